"""The joint image-word space: image features mapped into the word-vector space.

A photo's joint vector can be compared with any word's vector: a word ranks photos (text ->
image search) and a photo's nearest words are its tags. Every method returns L2-normalised
(n, word dim) float32 rows. The package, in reading order:

- `targets`: where the words put a dataset class (`dining_table` -> mean(dining, table)) and an
  ImageNet label (its WordNet names' and ancestors' head words);
- one module per method (`methods` lists them; adding one is a module and a line there):
  - `conse` (no training): the probability-weighted mean of the word vectors of the photo's top
    ImageNet classes, from the encoder's own classifier;
  - `hybrid` (the classic, DeViSE-style): an MLP trained with a cosine loss to put a photo on
    its class's word vector; it snaps every photo onto a trained class;
  - `blend` (default): ConSE over the dataset's own classes (a softmax classifier on the
    features), falling back on ConSE over ImageNet's as the classifier doubts;
  - `captions` (what `vector-search train` fits when the dataset has captions): the blend, moved
    towards a ridge map of the photo onto its captions' sentence vectors; tags stay the blend's;
- `training`: `train()` validates, splits off a test part, fits with the chosen method;
- `model`: the saved `JointModel` (npz arrays + JSON sidecar), run in numpy, checked on load;
- `tagging`: the tag vocabulary and `tags()`, which serve the engine and evaluation.

Measured by bench/measure_joint.py on Pascal Sentences (Lite0 features, GloVe 6B 50d; held-out
20%; zero-shot = 5 classes never trained on, mean and worst of 10 random sets):

    method   text->image P@10   tags top-1 / top-5   zero-shot P@10 (worst set)
    hybrid   0.685              0.665 / 0.780        0.142 (0.10)
    conse    0.445              0.195 / 0.365        0.720 (0.60)
    blend    0.750              0.675 / 0.765        0.712 (0.58)
"""

from __future__ import annotations

from vector_search.joint.blend import BlendSettings
from vector_search.joint.captions import CaptionSettings
from vector_search.joint.data import Progress, split
from vector_search.joint.errors import ModelMismatchError, ModelNotFoundError, TrainingError
from vector_search.joint.hybrid import HybridSettings
from vector_search.joint.methods import DEFAULT_METHOD, METHODS, SENTENCE_METHOD, TRAINABLE, default_method
from vector_search.joint.model import JointModel, sidecar
from vector_search.joint.sentence import SentenceSettings
from vector_search.joint.tagging import TagVocabulary, is_tag_word, tag_vocabulary, tags
from vector_search.joint.targets import imagenet_label_vectors
from vector_search.joint.training import conse_model, train

__all__ = [
    "DEFAULT_METHOD", "SENTENCE_METHOD", "METHODS", "BlendSettings", "CaptionSettings", "HybridSettings", "SentenceSettings", "JointModel", "ModelMismatchError",
    "ModelNotFoundError", "Progress",
    "TagVocabulary", "conse_model", "imagenet_label_vectors", "is_tag_word", "sidecar",
    "split", "tag_vocabulary", "tags", "train", "TrainingError", "TRAINABLE", "default_method",
]
