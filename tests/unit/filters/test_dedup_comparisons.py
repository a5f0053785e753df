"""Pair-aware dedup: a preference/candidates duplicate is the same comparison, never a shared prompt or response."""

from __future__ import annotations

import pytest

from curate.errors import InputError
from curate.filters.dedup import dedup_records
from curate.filters.dedup_comparisons import (
    comparison_cross,
    comparison_labels,
    dedup_comparisons,
    dedup_texts,
    text_matches,
)
from curate.ingest.records import Record, record_id

PROMPT = "Explain in two sentences why the sky looks blue during the day and red at sunset."
REFERENCE = ("Sunlight is scattered by the molecules of the air, and blue light, with its shorter wavelength, is "
             "scattered much more than red light, so blue reaches our eyes from every direction of the sky. At sunset "
             "the light crosses far more air, the blue is scattered away before it arrives, and the reds remain.")
ANSWERS = [
    "Rayleigh scattering favours short wavelengths; at dusk the long path through the atmosphere strips them out.",
    "Because air molecules bounce blue photons around more than red ones, and sunsets are red since the low sun "
    "shines through a thicker slab of atmosphere.",
    "The ocean reflects onto the sky, which is why it is blue; sunsets are red because of dust.",
    "Short waves scatter. Long waves travel. That is the whole story of the daytime and evening colours.",
    "I'm not sure, but I think it has to do with how the eye perceives colours at different times of the day.",
    "Blue light scatters off nitrogen and oxygen; when the sun is low the remaining direct beam is reddish.",
    "Sky colour comes from scattering of sunlight by gas molecules, stronger for blue; sunset light has lost it.",
    "It is blue because space is blue behind the thin air, and red at sunset since the sun cools down.",
    "Scattering. Daytime: blue dominates the diffuse light. Sunset: only orange and red get through.",
    "Light from the sun is white; the atmosphere scatters its blue part everywhere, and the long evening path "
    "removes that part so what reaches you is red.",
]


def pref(prompt: str, chosen: str, rejected: str) -> Record:
    fields = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    return Record(id=record_id("preference", fields), kind="preference", fields=fields)


def cands(prompt: str, *completions: str) -> Record:
    fields = {"prompt": prompt, "completions": list(completions)}
    return Record(id=record_id("candidates", fields), kind="candidates", fields=fields)


def typo(text: str) -> str:
    """One word edited and one letter doubled: a near-copy."""
    return text.replace("scattered", "scatered", 1).replace("sky", "skies", 1)


@pytest.mark.parametrize("method", ["exact", "minhash"])
def test_pairs_sharing_the_prompt_and_the_reference_are_all_kept(method):
    pairs = [pref(PROMPT, REFERENCE, a) if i % 2 else pref(PROMPT, a, REFERENCE) for i, a in enumerate(ANSWERS)]
    result = dedup_comparisons(pairs, method=method)
    assert result.n_removed == 0 and result.keep.all()
    # what the whole-text dedup did to the same pairs (the bug): most of them were "duplicates"
    assert dedup_records(pairs, method="minhash").n_removed >= 5


def test_exact_swapped_and_near_copies_of_a_whole_pair_are_removed():
    base = [pref(PROMPT, REFERENCE, a) for a in ANSWERS[:3]]
    copies = [
        pref("  " + PROMPT.upper() + "!!", REFERENCE.replace(",", ""), ANSWERS[0] + "\n"),  # exact after normalising
        pref(PROMPT, ANSWERS[1], REFERENCE),  # chosen and rejected swapped
        pref(PROMPT.replace("sky", "skies"), ANSWERS[2], typo(REFERENCE)),  # near-copy of every field, swapped
    ]
    result = dedup_comparisons([*base, *copies])
    assert result.cluster_id.tolist() == [0, 1, 2, 0, 1, 2]
    assert result.keep.tolist() == [True, True, True, False, False, False]
    exact = dedup_comparisons([*base, *copies], method="exact")
    assert exact.keep.tolist() == [True, True, True, False, False, True]  # the near-copy needs minhash


def test_candidate_lists_compare_as_multisets():
    a, b, c, d = ANSWERS[:4]
    records = [cands(PROMPT, a, b, c), cands(PROMPT, c, a, b), cands(PROMPT, typo(c), b, a),
               cands(PROMPT, a, b, d),  # shares two of three completions: another comparison
               cands(PROMPT, a, b),  # fewer completions: another comparison
               cands(PROMPT, a, a, b)]  # a multiset: {a, a, b} is not {a, b, c}
    assert comparison_labels(records).tolist() == [0, 0, 0, 3, 4, 5]


def test_a_candidates_record_can_equal_a_preference_pair():
    records = [pref(PROMPT, ANSWERS[0], ANSWERS[1]), cands(PROMPT, ANSWERS[1], ANSWERS[0])]
    assert comparison_labels(records, "exact").tolist() == [0, 0]


def test_near_copies_do_not_chain():
    """A ~ B and B ~ C (each a few words apart) must not make A and C one cluster when C is far from A."""
    words = REFERENCE.split()
    b = " ".join(words[:20] + ["REPLACED"] * 3 + words[23:])
    c = " ".join(words[:20] + ["REPLACED"] * 3 + words[23:34] + ["OTHER"] * 6 + words[40:])
    m = text_matches([REFERENCE, b, c], "minhash")
    assert m.linked(m.rep[REFERENCE], m.rep[b]) and m.linked(m.rep[b], m.rep[c])
    assert not m.linked(m.rep[REFERENCE], m.rep[c])
    records = [pref(PROMPT, ANSWERS[0], REFERENCE), pref(PROMPT, ANSWERS[0], b), pref(PROMPT, ANSWERS[0], c)]
    assert comparison_labels(records).tolist() == [0, 0, 2]


def test_cross_finds_the_reference_pair_a_pool_pair_copies():
    test_set = [pref(PROMPT, REFERENCE, ANSWERS[0]), pref(PROMPT, REFERENCE, ANSWERS[1])]
    pool = [pref(PROMPT, ANSWERS[1], REFERENCE),  # swapped copy of test pair 1
            pref(PROMPT, REFERENCE, ANSWERS[2]),  # shares prompt and reference only
            pref(PROMPT, typo(REFERENCE), ANSWERS[0])]  # near-copy of test pair 0
    assert comparison_cross(pool, test_set).tolist() == [1, -1, 0]
    assert comparison_cross(pool, []).tolist() == [-1, -1, -1]


def test_dedup_texts_lists_each_field_once_and_other_kinds_whole():
    example = Record(id="e", kind="example", fields={"prompt": "Hi", "completion": "Hello"})
    records = [pref(PROMPT, REFERENCE, ANSWERS[0]), pref(PROMPT, ANSWERS[1], REFERENCE), example]
    assert dedup_texts(records) == [PROMPT, REFERENCE, ANSWERS[0], ANSWERS[1], "Hi\n\nHello"]


def test_errors_name_what_to_do():
    with pytest.raises(InputError, match="dedup_records"):
        dedup_comparisons([Record(id="t", kind="text", fields={"text": "x"})])
    with pytest.raises(InputError, match="embedder"):
        dedup_comparisons([pref(PROMPT, REFERENCE, ANSWERS[0])], method="semantic")
    with pytest.raises(InputError, match="unknown dedup method"):
        text_matches(["a"], "fuzzy")  # type: ignore[arg-type]
