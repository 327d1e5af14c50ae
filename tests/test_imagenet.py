"""imagenet.py: the 1000 ImageNet class names, lookup by any synonym, and their WordNet ancestors."""

from __future__ import annotations

import pytest

from vector_search.imaging.imagenet import ClassNameError, class_ancestors, class_id, class_names, class_synonyms, find_class


def test_standard_order_and_format() -> None:
    names = class_names()
    assert len(names) == 1000 and len(class_synonyms()) == 1000
    assert names[0] == "tench, Tinca tinca"
    assert names[281] == "tabby, tabby cat"
    assert names[282] == "tiger cat"
    assert names[283] == "Persian cat"
    assert names[284] == "Siamese cat, Siamese"
    assert names[285] == "Egyptian cat"
    assert names[967] == "espresso"
    assert names[968] == "cup"
    assert names[999] == "toilet tissue, toilet paper, bathroom tissue"
    assert all(s and s == s.strip() and "," not in s for syn in class_synonyms() for s in syn)


@pytest.mark.parametrize(
    "name, cid",
    [("siamese cat", 284), ("Siamese", 284), ("  TABBY   cat ", 281), ("tabby", 281), ("espresso", 967), ("cup", 968)],
)
def test_find_class_any_synonym_case_insensitive(name: str, cid: int) -> None:
    assert find_class(name) == cid


def test_find_class_primary_name_wins_over_other_synonyms() -> None:
    assert find_class("harp") == 594  # not 593 "harmonica, mouth organ, harp, mouth harp"
    assert find_class("missile") == 657  # not 744 "projectile, missile"
    assert find_class("tub") == 876  # not 435 "bathtub, bathing tub, bath, tub"


@pytest.mark.parametrize("name, ids", [("crane", (134, 517)), ("Cardigan", (264, 474)), ("maillot", (638, 639)), ("panther", (286, 290))])
def test_find_class_refuses_a_name_of_several_classes_listing_them(name: str, ids: tuple[int, ...]) -> None:
    with pytest.raises(ClassNameError, match="ambiguous") as err:
        find_class(name)
    for cid in ids:
        assert f"{cid} ({class_names()[cid]})" in str(err.value)


def test_class_id_takes_an_id_or_a_name() -> None:
    assert class_id(517) == class_id("517") == class_id(" 517 ") == 517
    assert class_id("Siamese cat") == 284
    with pytest.raises(ClassNameError, match="out of range"):
        class_id(1000)
    with pytest.raises(ClassNameError, match="ambiguous"):
        class_id("crane")


def test_find_class_unknown_lists_close_matches() -> None:
    with pytest.raises(ValueError, match="siamese cat"):
        find_class("siamse cat")
    with pytest.raises(ValueError, match="unknown ImageNet class"):
        find_class("xyzzy")


def test_class_ancestors_follow_wordnet_to_its_root() -> None:
    retriever = class_ancestors(find_class("golden retriever"))
    assert retriever[:4] == [(1, ("retriever",)), (2, ("sporting dog", "gun dog")), (3, ("hunting dog",)), (4, ("dog", "domestic dog", "Canis familiaris"))]
    assert (2, ("cat", "true cat")) in class_ancestors(find_class("tabby"))
    # the two "crane" classes are told apart: a bird and a machine
    assert (1, ("wading bird", "wader")) in class_ancestors(134)
    assert any(lemmas == ("lifting device",) for _, lemmas in class_ancestors(517))
    for cid in range(1000):
        ancestors = class_ancestors(cid)
        steps = [s for s, _ in ancestors]
        assert steps == sorted(steps) and steps[0] == 1 and ("entity",) in {lemmas for _, lemmas in ancestors}
        assert len(set(ancestors)) == len(ancestors)
