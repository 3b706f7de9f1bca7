"""The smallest end-to-end check: the public entry point screens a form."""

import hipscreen


def test_tight_flexors_and_weak_glutes_give_imbalance() -> None:
    result = hipscreen.assess({"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}})
    assert "flexor-extensor-imbalance" in result.finding_ids()
