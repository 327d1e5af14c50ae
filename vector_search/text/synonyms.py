"""Class words that reach their synonyms: "plane", "airplane" and "aircraft" find `aeroplane`.

A collection's classes are its folder names (`aeroplane`, `tv_monitor`). People search with
other words for the same things, and GloVe does not always place them near the folder's word
("plane" sits nearer boat and train than aeroplane). `class_name_synonyms` maps such words to the
class they name, from two sources, no hand-written list:

- WordNet (the synsets the project ships, vector_search/data/imagenet_hierarchy.json): the
  lemmas of the synset holding a class word (airplane, aeroplane, plane) and of its hypernyms,
  the more general names (aircraft; motorbike's "motorcycle, bike"). A word found for two
  classes goes to the nearer link (bike: bicycle's own synset, a hypernym of motorbike's).
  GloVe picks the sense: of a class word's synsets, the one closest to the class vector
  ("plant" in `potted_plant` is flora, not a factory; "monitor" here only names a lizard: none).
- GloVe neighbours: a class word and a frequent word that are each other's nearest neighbour,
  the word clearly closer to that class than to any other (television <-> tv).

Plurals are folded to the singular when looking a word up (`airplanes` -> airplane).
"""

from __future__ import annotations

import functools

import numpy as np

from vector_search.imaging.imagenet import wordnet_synsets
from vector_search.search.vectors import normalize
from vector_search.text.vocab import FREQUENT_WORDS, class_words
from vector_search.text.words import WordVectors, cached_per_words

# A class word's WordNet sense must have a lemma (its own or its hypernyms') this close in GloVe
# to the class vector (flora/"potted plant" 0.45; the monitor lizard's: 0.16).
SENSE_MIN_COSINE = 0.3
# A GloVe neighbour must be this close to its class's vector and this much closer than to any other
# class (television: 0.82 to "tv monitor", 0.42 to the next class).
GLOVE_MIN_COSINE = 0.7
GLOVE_MARGIN = 0.2


@functools.lru_cache(maxsize=1)
def _wordnet() -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, list[str]]]:
    """(lemma -> synset ids, synset -> hypernym ids, synset -> lemmas), lemmas lower-cased."""
    synsets = wordnet_synsets()
    lemmas = {sid: [lemma.lower() for lemma in s["lemmas"]] for sid, s in synsets.items()}
    by_lemma: dict[str, list[str]] = {}
    for sid, names in lemmas.items():
        for lemma in names:
            by_lemma.setdefault(lemma, []).append(sid)
    return by_lemma, {sid: list(s["hypernyms"]) for sid, s in synsets.items()}, lemmas


def singular_forms(word: str) -> list[str]:
    """The word and its possible singulars: airplanes -> [airplanes, airplane]; buses -> [buses, buse, bus]."""
    forms = [word]
    if word.endswith("ies") and len(word) > 4:
        forms.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        forms.append(word[:-1])
        forms.append(word[:-2])
    elif word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        forms.append(word[:-1])
    return list(dict.fromkeys(forms))


def _general_names(sid: str) -> list[str]:
    """The nearest hypernyms with a one-word lemma, climbing past those named only in several words
    (airplane -> "heavier-than-air craft" -> aircraft)."""
    _, hypernyms, lemmas = _wordnet()
    found, level = [], hypernyms[sid]
    while level:
        found += [s for s in level if any(" " not in lemma for lemma in lemmas[s])]
        level = [h for s in level if all(" " in lemma for lemma in lemmas[s]) for h in hypernyms[s]]
    return found


def _sense(word: str, target: np.ndarray, words: WordVectors) -> str | None:
    """The shipped synset holding `word` in the sense of the class: of several, the one whose other
    one-word lemmas (else its general names') come closest in GloVe to the class vector (plant in
    `potted_plant` is flora, not the industrial plant); None if even that is far (monitor: a lizard)."""
    _, _, lemmas = _wordnet()
    best, best_sid = SENSE_MIN_COSINE, None
    for sid in _wordnet()[0].get(word, ()):
        for group in ([sid], _general_names(sid)):
            known = [lemma for s in group for lemma in lemmas[s] if " " not in lemma and lemma != word and lemma in words]
            if known:
                score = float((normalize(np.asarray([words.vector(k) for k in known], np.float32)) @ target).max())
                if score >= best:
                    best, best_sid = score, sid
                break
    return best_sid


def _ancestors(sid: str) -> set[str]:
    _, hypernyms, _ = _wordnet()
    found, level = set(), [sid]
    while level:
        level = [h for s in level for h in hypernyms[s] if h not in found]
        found.update(level)
    return found


def _wordnet_synonyms(own: dict[str, str], targets: dict[str, np.ndarray], words: WordVectors) -> dict[str, str]:
    """word -> class from the shipped WordNet synsets (module docstring); `own` is class word -> class,
    `targets` class -> unit class vector. A general name must be specific to one class: "animal"
    (above dog, cat, sheep...) or "seat" (chair, sofa) names none of them."""
    _, _, lemmas = _wordnet()
    senses = [(name, sense) for word, name in own.items() for form in (word, word + "s")  # "cows": a cattle lemma
              if (sense := _sense(form, targets[name], words)) is not None]
    owners: dict[str, set[str]] = {}
    for name, sense in senses:
        for ancestor in _ancestors(sense):
            owners.setdefault(ancestor, set()).add(name)
    found: dict[str, tuple[int, set[str]]] = {}  # word -> (link distance, classes at that distance)
    for name, sense in senses:
        general = [g for g in _general_names(sense) if len(owners[g]) == 1]
        for distance, synsets in ((0, [sense]), (1, general)):
            for lemma in (lemma for s in synsets for lemma in lemmas[s]):
                if " " in lemma or lemma in own or lemma not in words or words.index_of(lemma) >= FREQUENT_WORDS:
                    continue
                best, classes = found.get(lemma, (distance + 1, set()))
                if distance < best:
                    found[lemma] = (distance, {name})
                elif distance == best:
                    classes.add(name)
    return {word: next(iter(classes)) for word, (_, classes) in found.items() if len(classes) == 1}


def _glove_synonyms(own: dict[str, str], targets: dict[str, np.ndarray], words: WordVectors) -> dict[str, str]:
    """word -> class for mutual nearest neighbours in GloVe (module docstring): a class word's
    nearest frequent word whose own nearest is that class word, clearly closer to that class than
    to any other; forms of the class word itself (tv -> tvs) are left to `singular_forms`."""
    units = normalize(np.asarray(words.vectors[:FREQUENT_WORDS], np.float32))
    names = sorted(targets)
    class_units = np.asarray([targets[n] for n in names], np.float32)
    found = {}
    for word, name in own.items():
        sims = units @ normalize(words.vector(word)[None])[0]
        row = words.index_of(word)
        if row < FREQUENT_WORDS:
            sims[row] = -np.inf
        near = int(np.argmax(sims))
        candidate = words.words[near]
        if candidate in own or candidate.startswith(word) or word.startswith(candidate):
            continue
        back = units @ units[near]
        back[near] = -np.inf
        if int(np.argmax(back)) != row:
            continue
        to_classes = class_units @ units[near]
        mine = to_classes[names.index(name)]
        if mine >= GLOVE_MIN_COSINE and mine - np.delete(to_classes, names.index(name)).max(initial=-1.0) >= GLOVE_MARGIN:
            found[candidate] = name
    return found


@cached_per_words(maxsize=4)
def class_name_synonyms(classes: tuple[str, ...], words: WordVectors) -> dict[str, str]:
    """Lower-case word -> the class (folder name) it names, for words other than the class's own.

    A class's own words (`tv_monitor` -> tv, monitor) are left out: they find it already. A word
    shared by two class names (`dining_table`, `pool_table`) names neither.
    """
    own: dict[str, str] = {}
    shared: set[str] = set()
    for name in classes:
        for word in class_words(name):
            if own.get(word, name) != name:
                shared.add(word)
            own[word] = name
    own = {w: n for w, n in own.items() if w not in shared and w in words}
    targets = {n: normalize(np.mean([words.vector(w) for w in own if own[w] == n], axis=0, keepdims=True))[0] for n in set(own.values())}
    synonyms = _glove_synonyms(own, targets, words)
    synonyms.update(_wordnet_synonyms(own, targets, words))  # WordNet wins where both speak
    return {w: n for w, n in synonyms.items() if w not in shared}


def reached_class(word: str, synonyms: dict[str, str]) -> str | None:
    """The class a query word names through `synonyms`, trying its singular forms; None if none."""
    for form in singular_forms(word):
        if form in synonyms:
            return synonyms[form]
    return None
