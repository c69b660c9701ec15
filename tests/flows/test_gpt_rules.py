"""GPT enrichment rules, pure: prompts, JSON extraction, consumability, merges, reproducible post-processing."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agents.flows import gpt_rules as rules
from agents.flows.gpt_rules import (
    AnswerInvalid,
    AudienceAgeGenderAnswer,
    AudienceCitiesAnswer,
    BaselineError,
    CategLangTopicsAnswer,
    GenderAnswer,
    GenderLocationLangAnswer,
    LocationAnswer,
    PromptsError,
)
from tests.support import ROOT

# Prompts


def test_v0_12_has_the_six_sections_in_the_legacy_pattern() -> None:
    prompts = rules.load_prompts("v0.12")
    assert prompts.version == "v0.12"
    for section in rules.SECTIONS:
        prompt = prompts.section(section)
        assert "influencer marketing agency" in prompt.system
        assert "virat.kohli" in prompt.system and "JSON" in prompt.system
        message = prompt.user_message(handle="meera.makes", name="Meera Rao", bio="Chai, clay and colour")
        assert "1. Meera Rao" in message and '"Chai, clay and colour"' in message
        assert "https://www.instagram.com/meera.makes/" in message
    # The legacy spelling is the section's name, mapped explicitly.
    assert rules.BASE_LOCATION == "base_localtion" and prompts.section("base_localtion").model


def test_a_missing_name_or_bio_leaves_the_template_blank_not_none() -> None:
    message = rules.load_prompts("v0.12").section(rules.BASE_GENDER).user_message(handle="h", name=None, bio=None)
    assert "None" not in message and 'Bio: ""' in message


def _write(directory: Path, version: str, content: object) -> None:
    (directory / f"{version}.yaml").write_text(content if isinstance(content, str) else yaml.safe_dump(content))


def _sections() -> dict:
    return yaml.safe_load((rules.PROMPTS_DIR / "v0.12.yaml").read_text())


def test_a_missing_version_names_the_available_ones(tmp_path: Path) -> None:
    _write(tmp_path, "v0.12", _sections())
    with pytest.raises(PromptsError, match=r"no prompts for version 'v0\.9'.*available: v0\.12"):
        rules.load_prompts("v0.9", tmp_path)


def test_a_version_must_look_like_one(tmp_path: Path) -> None:
    with pytest.raises(PromptsError, match="not of the form"):
        rules.load_prompts("../v0.12", tmp_path)


def test_a_missing_section_is_named(tmp_path: Path) -> None:
    sections = _sections()
    del sections["audience_cities"]
    _write(tmp_path, "v1.0", sections)
    with pytest.raises(PromptsError, match="audience_cities: Field required"):
        rules.load_prompts("v1.0", tmp_path)


def test_a_section_needs_model_system_and_user(tmp_path: Path) -> None:
    sections = _sections()
    del sections["base_gender"]["model"]
    _write(tmp_path, "v1.0", sections)
    with pytest.raises(PromptsError, match=r"base_gender\.model: Field required"):
        rules.load_prompts("v1.0", tmp_path)


def test_an_unknown_placeholder_is_refused_at_load(tmp_path: Path) -> None:
    sections = _sections()
    sections["base_gender"]["user"] = "Creator {name} from {city}"
    _write(tmp_path, "v1.0", sections)
    with pytest.raises(PromptsError, match=r"unknown placeholders \['city'\]"):
        rules.load_prompts("v1.0", tmp_path)


def test_a_file_that_is_not_yaml(tmp_path: Path) -> None:
    _write(tmp_path, "v1.0", "base_gender: [unclosed")
    with pytest.raises(PromptsError, match="not valid YAML"):
        rules.load_prompts("v1.0", tmp_path)


# JSON extraction

GENDER = rules.RULES[rules.BASE_GENDER]
GLL = rules.RULES[rules.GENDER_LOCATION_LANG]


@pytest.mark.parametrize(
    "reply",
    [
        '{"handle": "h", "gender": "FEMALE"}',
        '```json\n{"handle": "h", "gender": "FEMALE"}\n```',
        '```\n{"handle": "h", "gender": "FEMALE"}\n```',
        '  \n```JSON {"handle": "h", "gender": "FEMALE"}```\n',
    ],
)
def test_code_fences_are_stripped(reply: str) -> None:
    assert GENDER.read(reply, "h").gender == "FEMALE"


def test_prose_is_not_an_answer_and_the_reason_quotes_it() -> None:
    with pytest.raises(AnswerInvalid, match=r"not JSON \(Expecting value at line 1 column 1\): \"I'm sorry"):
        GENDER.read("I'm sorry, I cannot help with that.", "h")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", "empty reply"),
        (None, "empty reply"),
        ('["MALE"]', "a JSON list, not an object"),
        ('{"handle": "h", "gender": 1}', "gender: Input should be a valid string"),
        ('{"handle": "h", "gender": "MALE", "gender": "FEMALE"}', r"duplicate keys \['gender'\]"),
        ('{"handle": "h", "gender": "MALE"}\n\n{"handle": "x", "gender": "FEMALE"}', "not JSON \\(Extra data"),
    ],
)
def test_what_is_not_an_answer(reply: str | None, reason: str) -> None:
    with pytest.raises(AnswerInvalid, match=reason):
        GENDER.read(reply, "h")


def test_several_objects_take_the_one_for_the_handle() -> None:
    reply = (
        '{\n  "handle": "fan.page", "country": "India", "city": "Pune", "state": "Maharashtra",\n'
        '  "gender": "MALE", "languages": ["Marathi"]\n}\n\n'
        '```json\n{"handle": "@Meera.Makes", "country": "India", "city": "Kochi", "state": "Kerala",\n'
        ' "gender": "FEMALE", "languages": ["Malayalam", "English"]}\n```\n\nHope this helps!'
    )
    answer = GLL.read(reply, "meera.makes")
    assert (answer.city, answer.gender, answer.languages) == ("Kochi", "FEMALE", ["Malayalam", "English"])


def test_several_objects_none_for_the_handle() -> None:
    reply = '{"handle": "a", "gender": "MALE"}\n\n{"handle": "b", "gender": "FEMALE"}'
    with pytest.raises(AnswerInvalid, match="none for handle 'c'"):
        GLL.read(reply, "c")


def test_extra_keys_are_kept_for_row_data() -> None:
    answer = rules.RULES[rules.AUDIENCE_CITIES].read(
        '{"handle": "h", "platform": "instagram", "note": "estimate", "audience": {"cities": {"Pune": 0.5}}}', "h"
    )
    assert answer.model_dump()["note"] == "estimate"


# Consumability


@pytest.mark.parametrize("gender", [None, "", "  ", "unknown", "UNKNOWN", " Unknown ", "None"])
def test_a_blank_gender_is_not_consumable(gender: str | None) -> None:
    assert rules.gender_problem(GenderAnswer(handle="h", gender=gender)) == "gender missing or UNKNOWN"


def test_a_gender_is_consumable() -> None:
    assert rules.gender_problem(GenderAnswer(handle="h", gender="FEMALE")) is None


def test_location_needs_all_three() -> None:
    assert rules.location_problem(LocationAnswer(city="Pune", state="Maharashtra", country="India")) is None
    assert (
        rules.location_problem(LocationAnswer(city="Pune", state="", country="Unknown"))
        == "state, country missing or UNKNOWN"
    )


def test_categories_languages_and_topics_must_be_non_empty() -> None:
    full = CategLangTopicsAnswer(categories=["Food"], languages=["Hindi"], topics=["street food"])
    assert rules.categ_lang_topics_problem(full) is None
    assert rules.categ_lang_topics_problem(full.model_copy(update={"topics": []})) == "topics missing or UNKNOWN"
    assert (
        rules.categ_lang_topics_problem(full.model_copy(update={"languages": None})) == "languages missing or UNKNOWN"
    )


def test_gender_location_lang_needs_all_five() -> None:
    full = GenderLocationLangAnswer(
        country="India", city="Kochi", state="Kerala", gender="FEMALE", languages=["Malayalam"]
    )
    assert rules.gender_location_lang_problem(full) is None
    assert (
        rules.gender_location_lang_problem(full.model_copy(update={"gender": "unknown", "languages": []}))
        == "gender, languages missing or UNKNOWN"
    )
    assert rules.gender_location_lang_problem(full.model_copy(update={"state": "None"})) == "state missing or UNKNOWN"


def _age_gender(changes: dict[str, float | None] | None = None) -> AudienceAgeGenderAnswer:
    """Even shares, with some changed (None drops the key)."""
    shares: dict[str, float] = dict.fromkeys(rules.AGE_GENDER_KEYS, 1 / 14)
    for key, value in (changes or {}).items():
        if value is None:
            del shares[key]
        else:
            shares[key] = value
    return AudienceAgeGenderAnswer.model_validate({"handle": "h", "audience": {"age_gender": shares}})


def test_age_gender_with_every_bucket_is_consumable() -> None:
    assert rules.age_gender_problem(_age_gender()) is None


def test_the_13_17_buckets_are_optional() -> None:
    assert rules.age_gender_problem(_age_gender({"13-17 male": None, "13-17 female": None})) is None


def test_a_missing_adult_bucket_is_not_consumable() -> None:
    assert rules.age_gender_problem(_age_gender({"65+ female": None})) == "age_gender lacks 65+ female"


@pytest.mark.parametrize("value", [1.2, -0.01])
def test_a_share_outside_0_1_is_not_consumable(value: float) -> None:
    assert (
        rules.age_gender_problem(_age_gender({"25-34 male": value})) == "age_gender shares outside [0, 1]: 25-34 male"
    )


def test_the_male_total_counts_only_male_keys() -> None:
    # 0.2 male, 0.8 female: the legacy substring sum saw "male" in every key, counted 1.0 and accepted it.
    shares = {key: (0.2 if key.endswith(" male") else 0.8) / 7 for key in rules.AGE_GENDER_KEYS}
    answer = AudienceAgeGenderAnswer.model_validate({"audience": {"age_gender": shares}})
    legacy_male_total = sum(value for key, value in shares.items() if "male" in key)
    assert legacy_male_total >= rules.MIN_SEX_SHARE
    assert rules.age_gender_problem(answer) == "male 0.200 and female 0.800 must each be at least 0.25"


def test_the_female_total_is_checked_too() -> None:
    shares = {key: (0.9 if key.endswith(" male") else 0.1) / 7 for key in rules.AGE_GENDER_KEYS}
    answer = AudienceAgeGenderAnswer.model_validate({"audience": {"age_gender": shares}})
    assert rules.age_gender_problem(answer) == "male 0.900 and female 0.100 must each be at least 0.25"


def _cities(shares: dict[str, float]) -> AudienceCitiesAnswer:
    return AudienceCitiesAnswer.model_validate({"handle": "h", "audience": {"cities": shares}})


def test_cities_need_more_than_five() -> None:
    six = {f"City {n}": 0.1 for n in range(6)}
    assert rules.cities_problem(_cities(six)) is None
    five_and_others = {**{f"City {n}": 0.1 for n in range(5)}, "Others": 0.5}
    assert rules.cities_problem(_cities(five_and_others)) == "only 5 cities, more than 5 needed"


def test_city_shares_must_be_shares() -> None:
    six = {f"City {n}": 0.1 for n in range(6)}
    assert rules.cities_problem(_cities({**six, "City 0": -0.1})) == "city shares outside [0, 1]: City 0"
    assert rules.cities_problem(_cities(dict.fromkeys(six, 0.0))) == "city shares sum to 0"


# Merges


def test_a_reask_fills_only_what_the_kept_answer_left_blank() -> None:
    kept = LocationAnswer(handle="h", city="Pune", state="", country="UNKNOWN")
    new = LocationAnswer(handle="other", city="Mumbai", state="Maharashtra", country="unknown")
    merged = rules.fill_blanks(kept, new)
    assert (merged.handle, merged.city, merged.state, merged.country) == ("h", "Pune", "Maharashtra", "UNKNOWN")
    assert rules.location_problem(merged) == "country missing or UNKNOWN"
    final = rules.fill_blanks(merged, LocationAnswer(city="Nashik", state="Goa", country="India"))
    assert (final.city, final.state, final.country) == ("Pune", "Maharashtra", "India")


def test_a_reask_fills_empty_lists() -> None:
    kept = CategLangTopicsAnswer(categories=["Food"], languages=["Hindi"], topics=[])
    new = CategLangTopicsAnswer(categories=["Travel"], languages=[], topics=["chai", "thali"])
    merged = rules.fill_blanks(kept, new)
    assert (merged.categories, merged.languages, merged.topics) == (["Food"], ["Hindi"], ["chai", "thali"])


def test_the_first_answer_is_kept_as_is() -> None:
    first = GenderAnswer(gender="UNKNOWN")
    assert rules.fill_blanks(None, first) is first


def test_each_section_s_retry_policy() -> None:
    policy = {name: (r.reasks, r.merge) for name, r in rules.RULES.items()}
    assert policy == {
        "base_gender": (2, rules.fill_blanks),
        "base_localtion": (2, rules.fill_blanks),
        "base_categ_lang_topics": (2, rules.fill_blanks),
        "audience_age_gender": (2, rules.replace),
        "audience_cities": (2, rules.replace),
        "base_gender_location_lang": (1, rules.replace),
    }
    assert [name for name, r in rules.RULES.items() if r.several_objects] == ["base_gender_location_lang"]


# Post-processing


def test_the_seed_is_stable_across_processes() -> None:
    code = (
        "from agents.flows.gpt_rules import seeded_random; "
        "print(seeded_random('v0.12', 'audience_cities', 'meera.makes').random())"
    )
    values = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)},
        ).stdout
        for seed in ("1", "2")
    }
    assert values == {f"{rules.seeded_random('v0.12', 'audience_cities', 'meera.makes').random()}\n"}
    assert rules.seeded_random("v0.12", "x", "a").random() != rules.seeded_random("v0.12", "x", "b").random()


def test_age_gender_moves_toward_the_baseline_for_a_seeded_number_of_epochs() -> None:
    raw = {key: float(n + 1) for n, key in enumerate(rules.AGE_GENDER_KEYS)}  # sums to 105
    baseline = rules.load_baseline().for_category("Sports")
    result = rules.normalise_age_gender(raw, baseline, random.Random(7))
    epochs = random.Random(7).randint(50, 100)
    # Each epoch closes 2 % of the gap to the baseline, so after n epochs the gap is 0.98ⁿ of the start.
    expected = {
        key: round(b + (raw[key] / 105 - b) * 0.98**epochs, 3)
        for key, b in zip(rules.AGE_GENDER_KEYS, baseline, strict=True)
    }
    assert result == pytest.approx(expected, abs=1e-3)
    assert list(result) == list(rules.AGE_GENDER_KEYS)
    assert sum(result.values()) == pytest.approx(1, abs=0.01)


def test_age_gender_is_reproducible_and_seed_dependent() -> None:
    raw = _age_gender({"13-17 male": None, "18-24 female": 0.3}).audience.age_gender
    baseline = rules.load_baseline().for_category("Beauty")
    first = rules.normalise_age_gender(raw, baseline, rules.seeded_random("v0.12", "audience_age_gender", "h"))
    again = rules.normalise_age_gender(raw, baseline, rules.seeded_random("v0.12", "audience_age_gender", "h"))
    other = [rules.normalise_age_gender(raw, baseline, random.Random(seed)) for seed in range(5)]
    assert first == again
    assert len({tuple(result.values()) for result in other}) > 1
    # A missing 13-17 bucket starts from 0 and only the baseline pulls it up.
    assert 0 < first["13-17 male"] < baseline[0]


class _Highest(random.Random):
    """Every draw at the top of its range, so the arithmetic can be checked by hand."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_cities_by_hand() -> None:
    shares = {"Pune": 0.2, "Delhi": 0.4, "Goa": 0.01, "Agra": 0.01, "Kota": 0.1, "Others": 0.28}
    result = rules.spread_cities(shares, _Highest())
    # The tied 0.01s get +min(0.015, 0.005); the total is then 0.73, and the cities take 75 %.
    cities = {"Delhi": 0.4, "Pune": 0.2, "Kota": 0.1, "Goa": 0.015, "Agra": 0.015}
    expected = {city: round(share / 0.73 * 0.75, 3) for city, share in cities.items()}
    assert result == {**expected, "others": round(1 - sum(expected.values()), 3)}
    assert list(result) == [*cities, "others"]


def test_cities_are_reproducible_ordered_and_leave_the_rest_to_others() -> None:
    shares = {f"City {n}": share for n, share in enumerate([0.2, 0.1, 0.05, 0.05, 0.05, 0.03, 0.01, 0.01])}
    first = rules.spread_cities(shares, rules.seeded_random("v0.12", "audience_cities", "h"))
    again = rules.spread_cities(shares, rules.seeded_random("v0.12", "audience_cities", "h"))
    assert first == again and list(first)[-1] == "others"
    cities = [share for city, share in first.items() if city != "others"]
    assert cities == sorted(cities, reverse=True)
    assert 0.65 - 0.005 <= sum(cities) <= 0.75 + 0.005
    assert sum(first.values()) == pytest.approx(1, abs=1e-9)
    # Untied shares keep their proportions; the 0.05 ties were pulled apart.
    assert first["City 0"] / first["City 1"] == pytest.approx(2, rel=0.02)
    assert len({first["City 2"], first["City 3"], first["City 4"]}) == 3


# Baseline


def test_the_shipped_baseline() -> None:
    baseline = rules.load_baseline()
    assert len(baseline.rows) == 45 and "missing" in baseline.rows
    assert all(sum(row) == pytest.approx(1, abs=1e-9) and len(row) == 14 for row in baseline.rows.values())
    assert baseline.for_category(" sports ") == baseline.rows["sports"]
    assert baseline.for_category("Underwater Basket Weaving") == baseline.for_category(None) == baseline.rows["missing"]


def _baseline_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "baseline.csv"
    path.write_text("\n".join(["category," + ",".join(rules.BASELINE_COLUMNS), *lines]) + "\n")
    return path


EVEN = ",".join(["0.0714"] * 13 + ["0.0718"])


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ((f"Sports,{EVEN}",), "no 'Missing' row"),
        ((f"Missing,{EVEN}", f"missing,{EVEN}"), "appears twice"),
        ((f"Missing,{EVEN.replace('0.0718', '0.5')}",), "sum to 1.428, not 1"),
        ((f"Missing,{EVEN},0.1",), "expected 14 shares"),
        ((f"Missing,{EVEN.replace('0.0718', 'x')}",), "not a number"),
    ],
)
def test_a_broken_baseline_is_refused(tmp_path: Path, lines: tuple[str, ...], reason: str) -> None:
    with pytest.raises(BaselineError, match=reason):
        rules.load_baseline(_baseline_file(tmp_path, *lines))


def test_a_baseline_with_other_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "baseline.csv"
    path.write_text("category,m_18_24,f_18_24\nMissing,0.5,0.5\n")
    with pytest.raises(BaselineError, match="expected the columns category, m_13_17"):
        rules.load_baseline(path)
