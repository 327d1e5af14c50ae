"""`vector-search serve`: the engine as an HTTP JSON API (FastAPI on uvicorn).

Routes map to engine calls and nothing else; every answer has the CLI's `--json` shape
(answers.answer_json). One Engine, loaded before the first request, answers every request:
FastAPI runs these (synchronous) routes on its thread pool, and the engine is safe to share
between threads (engine/). The server-mode rules apply (rules.py): with $VECTOR_SEARCH_ROOT
set, the store and every photo a request names must lie under it; uploads over
images.MAX_BYTES are refused before they are decoded. The API never writes: it serves what is
indexed, read-only or not.

Bad input is a 4xx whose body is one line, {"detail": "..."}: a library error (VectorSearchError)
400, a photo or folder outside the root 403, a file that does not exist 404, an upload too big 413,
a malformed parameter 422. Anything else is a bug and a 500.
"""

from __future__ import annotations

import io
import logging
import os
from typing import Annotated, Callable

from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from vector_search import config
from vector_search.answers import answer_json
from vector_search.engine import Engine
from vector_search.errors import VectorSearchError
from vector_search.imaging.images import MAX_BYTES, ImageError
from vector_search.serving.rules import PathNotAllowedError, check_allowed
from vector_search.store.metadata import Filters

log = logging.getLogger(__name__)
K_MAX = 1000
K = Annotated[int, Query(ge=1, le=K_MAX, description="number of results")]
Text = Annotated[str, Query(min_length=1, max_length=1000)]
PhotoPath = Annotated[str, Query(min_length=1, max_length=4096, description="a photo: relative to the indexed folder, or absolute")]


def photo_filters(
    folder: Annotated[str | None, Query(alias="in", description="only photos under this subfolder of the indexed folder")] = None,
    after: Annotated[str | None, Query(description="only photos taken on or after this date (2024-07-14, 2024-07)")] = None,
    before: Annotated[str | None, Query(description="only photos taken on or before this date")] = None,
    camera: Annotated[str | None, Query(description='only photos whose camera ("Make Model") contains this, any case')] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1, description="drop answers scoring under this (0-1)")] = None,
) -> dict:
    """The filters and threshold of the CLI's --in/--after/--before/--camera/--min-score, as engine arguments."""
    return {"filters": Filters.of(folder, after, before, camera), "min_score": min_score}


PhotoFilters = Annotated[dict, Depends(photo_filters)]


class UploadTooLargeError(ImageError):
    """An uploaded photo over images.MAX_BYTES."""


def create_app(engine: Engine) -> FastAPI:
    """The API over `engine` (loaded by the caller: see warm)."""
    app = FastAPI(
        title="vector_search",
        summary="Semantic search over a photo folder and words: text search, similar photos, tags, similar words.",
        version="1",
    )

    @app.exception_handler(VectorSearchError)
    def library_error(request: Request, err: VectorSearchError) -> JSONResponse:
        return _error(_status(err), str(err))

    @app.exception_handler(OSError)
    def file_error(request: Request, err: OSError) -> JSONResponse:
        return _error(404 if isinstance(err, FileNotFoundError) else 400, f"cannot read file: {err.strerror or err}")

    @app.exception_handler(RequestValidationError)
    def bad_parameter(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        return _error(422, f"{where}: {first.get('msg', 'invalid')}")

    @app.get("/health", summary="the store being served")
    def health() -> dict:
        store = engine.store
        return {"status": "ok", "encoder": store.encoder, "photos": len(store), "dataset": store.dataset,
                "read_only": config.read_only()}

    @app.get("/search", summary="photos for a text query (words, phrases, weighted terms 'cat + sofa - person')")
    def search(q: Text, options: PhotoFilters, k: K = 10) -> dict:
        results, parsed = engine.search_text(q, k, **options)
        return answer_json(q, results, {"words": [w.as_dict() for w in parsed.words]})

    @app.get("/words", summary="words similar to a word or phrase")
    def words(q: Text, k: K = 10) -> dict:
        return answer_json(q, engine.similar_words(q, k))

    @app.get("/similar", summary="photos similar to a photo on the server")
    def similar(path: PhotoPath, options: PhotoFilters, k: K = 10) -> dict:
        return answer_json(path, engine.similar_images(_photo(engine, path), k, **options))

    @app.post("/similar", summary="photos similar to an uploaded photo (decoded in memory, never written)")
    def similar_upload(file: Annotated[UploadFile, File(description="a photo: JPEG, PNG, HEIC, AVIF, ...")], options: PhotoFilters,
                       k: K = 10) -> dict:
        return answer_json(file.filename or "upload", engine.similar_images(_upload(file), k, **options))

    @app.get("/tags", summary="word tags of a photo on the server")
    def tags(path: PhotoPath, k: K = 5) -> dict:
        return answer_json(path, engine.tags(_photo(engine, path), k))

    return app


def _status(err: VectorSearchError) -> int:
    if isinstance(err, PathNotAllowedError):
        return 403
    if isinstance(err, UploadTooLargeError):
        return 413
    if isinstance(err, FileNotFoundError) or str(err) == "file not found":
        return 404
    return 400


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": " ".join(message.split())}, status_code=status)  # one line


def _photo(engine: Engine, path: str) -> str:
    """A photo named by a request: relative to the indexed folder, or absolute; under the root in server mode."""
    full = os.path.join(engine.store.dataset, path)  # an absolute `path` stays itself
    if config.serve_root() is not None:
        check_allowed(full, "photo")
    return full


def _upload(file: UploadFile) -> io.BytesIO:
    """The uploaded bytes, in memory, refused past MAX_BYTES before anything is decoded."""
    data = file.file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise UploadTooLargeError(f"upload too large (over {MAX_BYTES // 2**20} MiB)")
    return io.BytesIO(data)


def warm(engine: Engine) -> None:
    """Load what every route needs before the first request: the store, its image index, the joint
    model and its index, the tag words, the word vectors and their index, the image encoder (for
    uploads); a request then never waits for a load."""
    check_allowed(engine.features_root, "feature store folder")  # server mode: the store under the root
    from PIL import Image

    loaded = engine.current()
    _ = loaded.images, loaded.joint_space, loaded.collection, engine.tag_vocabulary
    encoder = engine.encoder_named(loaded.store.encoder)
    encoder.embed(encoder.preprocess(Image.new("RGB", (64, 64)))[None])  # its first run builds the model (~20 s under load)
    engine.similar_words("photo", 1)


def serve(engine: Engine, host: str = "127.0.0.1", port: int = 8000, ready: Callable[[str], None] | None = None) -> None:
    """Load the engine, then answer HTTP on host:port until interrupted; `ready(url)` once loaded."""
    import uvicorn

    log.info("loading the store %s ...", engine.features_root)
    warm(engine)
    if ready:
        ready(f"http://{host}:{port}")
    uvicorn.run(create_app(engine), host=host, port=port, log_level="warning")
