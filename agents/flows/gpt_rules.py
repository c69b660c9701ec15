"""The rules of GPT enrichment (legacy §6), with no I/O beyond reading Beat's own data files.

For each prompt section: the answer's shape (a pydantic model), when an answer is consumable,
how a re-ask's answer merges into the one kept, and how many re-asks there are. Then the
post-processing of the audience answers, made reproducible: its randomness comes from a
generator seeded by a stable hash of the prompt version, the section and the handle.

Deliberate departures from the legacy engine:
- the male share of ``audience_age_gender`` sums only keys ending in " male" (the legacy sum
  matched "male" as a substring, so it counted the female keys too);
- "None" counts as a missing answer like "" and "UNKNOWN", in every section;
- tied city shares get noise of at most half their value, so a share never turns negative.

``data/age_gender_baseline.csv`` is a plausible stand-in for the legacy private baseline
(``gpt/age_gender_private_data.csv``, not available to us): operators replace it with their own
table, same columns, one row per category, ``Missing`` as the fallback.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from topics.errors import BeatError, Decision

HERE = Path(__file__).resolve().parent
PROMPTS_DIR = HERE / "prompts"
BASELINE_FILE = HERE / "data" / "age_gender_baseline.csv"

BASE_GENDER = "base_gender"
BASE_LOCATION = "base_localtion"  # sic: the legacy prompt files spell the section this way
BASE_CATEG_LANG_TOPICS = "base_categ_lang_topics"
AUDIENCE_AGE_GENDER = "audience_age_gender"
AUDIENCE_CITIES = "audience_cities"
GENDER_LOCATION_LANG = "base_gender_location_lang"
SECTIONS = (
    BASE_GENDER,
    BASE_LOCATION,
    BASE_CATEG_LANG_TOPICS,
    AUDIENCE_AGE_GENDER,
    AUDIENCE_CITIES,
    GENDER_LOCATION_LANG,
)

AGE_BUCKETS = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_GENDER_KEYS = tuple(f"{age} {sex}" for age in AGE_BUCKETS for sex in ("male", "female"))
# The legacy check leaves the 13-17 buckets optional; a missing one counts as 0.
REQUIRED_AGE_GENDER_KEYS = AGE_GENDER_KEYS[2:]
BASELINE_COLUMNS = tuple(
    f"{sex[0]}_{age.rstrip('+').replace('-', '_')}" for age in AGE_BUCKETS for sex in ("male", "female")
)
MIN_SEX_SHARE = 0.25
MIN_CITIES = 6

# Post-processing constants of legacy §6.
LEARNING_RATE = 0.01
EPOCHS = (50, 100)
TIE_NOISE = 0.015
CITIES_SHARE = (0.65, 0.75)
DECIMALS = 3
OTHERS = "others"

BLANK_WORDS = frozenset({"", "unknown", "none"})
PLACEHOLDERS = frozenset({"name", "bio", "handle"})
VERSION = re.compile(r"v\d+(\.\d+)*")
FENCED = re.compile(r"^```[\w-]*[ \t]*\n?(.*?)\n?```$", re.DOTALL)
BLANK_LINES = re.compile(r"\n[ \t]*\n")


# Prompts


class PromptsError(BeatError, ValueError):
    """The prompt file of the configured version is missing or malformed."""

    decision = Decision.DEFINITIVE


class PromptSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    system: str = Field(min_length=1)
    user: str = Field(min_length=1)

    @field_validator("user")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        if unknown := names - PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholders {sorted(unknown)}: the template may use {{name}}, {{bio}}, {{handle}}"
            )
        return value

    def user_message(self, *, handle: str, name: str | None, bio: str | None) -> str:
        return self.user.format(handle=handle, name=name or "", bio=bio or "")


class PromptFile(BaseModel):
    """A prompts file: the six sections, each required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_gender: PromptSection
    base_localtion: PromptSection
    base_categ_lang_topics: PromptSection
    audience_age_gender: PromptSection
    audience_cities: PromptSection
    base_gender_location_lang: PromptSection


@dataclass(frozen=True, slots=True)
class Prompts:
    version: str
    file: PromptFile

    def section(self, name: str) -> PromptSection:
        section: PromptSection = getattr(self.file, name)
        return section


def load_prompts(version: str, directory: Path = PROMPTS_DIR) -> Prompts:
    if not VERSION.fullmatch(version):
        raise PromptsError(f"prompt version {version!r} is not of the form v0.12")
    path = directory / f"{version}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in directory.glob("*.yaml"))) or "none"
        raise PromptsError(f"no prompts for version {version!r} at {path} (available: {available})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Prompts(version, PromptFile.model_validate(raw))
    except yaml.YAMLError as exc:
        raise PromptsError(f"{path} is not valid YAML: {exc}") from exc
    except ValidationError as exc:
        raise PromptsError(f"{path}: {_describe(exc)}") from None


# Answers


class AnswerInvalid(BeatError, ValueError):
    """A reply that is not an answer of the asked shape at all."""

    decision = Decision.DEFINITIVE


class Answer(BaseModel):
    # Extra keys are kept: they are part of what the model said (``row_data``).
    model_config = ConfigDict(extra="allow")

    handle: str | None = None


class GenderAnswer(Answer):
    gender: str | None = None


class LocationAnswer(Answer):
    city: str | None = None
    state: str | None = None
    country: str | None = None


class CategLangTopicsAnswer(Answer):
    categories: list[str] | None = None
    languages: list[str] | None = None
    topics: list[str] | None = None


class AgeGenderAudience(BaseModel):
    model_config = ConfigDict(extra="allow")

    age_gender: dict[str, float]


class AudienceAgeGenderAnswer(Answer):
    platform: str | None = None
    audience: AgeGenderAudience


class CitiesAudience(BaseModel):
    model_config = ConfigDict(extra="allow")

    cities: dict[str, float]


class AudienceCitiesAnswer(Answer):
    platform: str | None = None
    audience: CitiesAudience


class GenderLocationLangAnswer(Answer):
    country: str | None = None
    city: str | None = None
    state: str | None = None
    gender: str | None = None
    languages: list[str] | None = None


def is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() in BLANK_WORDS
    if isinstance(value, (list, dict)):
        return not value
    return False


def _strip_fences(text: str) -> str:
    text = text.strip()
    fenced = FENCED.match(text)
    return fenced.group(1).strip() if fenced else text


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    counts = Counter(key for key, _ in pairs)
    if repeated := sorted(key for key, n in counts.items() if n > 1):
        raise AnswerInvalid(f"duplicate keys {repeated}")
    return dict(pairs)


def _loads(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_unique_keys)


def same_handle(value: Any, handle: str) -> bool:
    return isinstance(value, str) and value.strip().lstrip("@").lower() == handle.strip().lstrip("@").lower()


def extract_json(reply: str, *, several_for: str | None = None) -> Any:
    """The JSON value of a reply, code fences stripped.

    With ``several_for`` (a handle), a reply holding several JSON objects (json's "Extra data") is
    split on blank lines and the object whose ``handle`` is that handle is taken, as legacy did.
    """
    text = _strip_fences(reply)
    try:
        return _loads(text)
    except json.JSONDecodeError as exc:
        if several_for is None or not exc.msg.startswith("Extra data"):
            raise AnswerInvalid(
                f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): {_snippet(reply)}"
            ) from None
    for chunk in BLANK_LINES.split(text):
        try:
            value = _loads(_strip_fences(chunk))
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and same_handle(value.get("handle"), several_for):
            return value
    raise AnswerInvalid(f"several JSON objects, none for handle {several_for!r}")


def _snippet(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:3]:
        where = ".".join(str(step) for step in error["loc"]) or "answer"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


# Consumability: each returns what is wrong, or None when the answer can be used.


def _blank_keys(answer: Answer, keys: Sequence[str]) -> str | None:
    blank = [key for key in keys if is_blank(getattr(answer, key))]
    return f"{', '.join(blank)} missing or UNKNOWN" if blank else None


def gender_problem(answer: GenderAnswer) -> str | None:
    return _blank_keys(answer, ("gender",))


def location_problem(answer: LocationAnswer) -> str | None:
    return _blank_keys(answer, ("city", "state", "country"))


def categ_lang_topics_problem(answer: CategLangTopicsAnswer) -> str | None:
    return _blank_keys(answer, ("categories", "languages", "topics"))


def gender_location_lang_problem(answer: GenderLocationLangAnswer) -> str | None:
    return _blank_keys(answer, ("gender", "city", "state", "country", "languages"))


def age_gender_problem(answer: AudienceAgeGenderAnswer) -> str | None:
    shares = answer.audience.age_gender
    if missing := [key for key in REQUIRED_AGE_GENDER_KEYS if key not in shares]:
        return f"age_gender lacks {', '.join(missing)}"
    if outside := [key for key, value in shares.items() if not 0 <= value <= 1]:
        return f"age_gender shares outside [0, 1]: {', '.join(outside)}"
    male = sum(value for key, value in shares.items() if key.endswith(" male"))
    female = sum(value for key, value in shares.items() if key.endswith(" female"))
    if male < MIN_SEX_SHARE or female < MIN_SEX_SHARE:
        return f"male {male:.3f} and female {female:.3f} must each be at least {MIN_SEX_SHARE}"
    return None


def _named_cities(shares: Mapping[str, float]) -> dict[str, float]:
    # The model's own remainder would collide with the ``others`` the post-processing adds.
    return {city: share for city, share in shares.items() if city.strip().lower() != OTHERS}


def cities_problem(answer: AudienceCitiesAnswer) -> str | None:
    cities = _named_cities(answer.audience.cities)
    if len(cities) < MIN_CITIES:
        return f"only {len(cities)} cities, more than {MIN_CITIES - 1} needed"
    if outside := [city for city, share in cities.items() if not 0 <= share <= 1]:
        return f"city shares outside [0, 1]: {', '.join(outside)}"
    if sum(cities.values()) <= 0:
        return "city shares sum to 0"
    return None


# Merging a re-ask's answer into the kept one


def fill_blanks(kept: Answer | None, new: Answer) -> Answer:
    """Keep what the kept answer already says; take from the new one only what it left blank."""
    if kept is None:
        return new
    updates = {
        key: getattr(new, key)
        for key in type(kept).model_fields
        if key != "handle" and is_blank(getattr(kept, key)) and not is_blank(getattr(new, key))
    }
    return kept.model_copy(update=updates)


def replace(kept: Answer | None, new: Answer) -> Answer:
    return new


@dataclass(frozen=True, slots=True)
class SectionRules:
    section: str
    answer: type[Answer]
    reasks: int
    merge: Callable[[Answer | None, Answer], Answer]
    problem: Callable[[Any], str | None]
    # The reply may hold one object per creator (legacy "Extra data").
    several_objects: bool = False

    def read(self, reply: str | None, handle: str) -> Answer:
        """The reply as this section's answer; AnswerInvalid when it is none."""
        if reply is None or not reply.strip():
            raise AnswerInvalid("empty reply")
        value = extract_json(reply, several_for=handle if self.several_objects else None)
        if not isinstance(value, dict):
            raise AnswerInvalid(f"a JSON {type(value).__name__}, not an object")
        try:
            return self.answer.model_validate(value)
        except ValidationError as exc:
            raise AnswerInvalid(_describe(exc)) from None


RULES: dict[str, SectionRules] = {
    rules.section: rules
    for rules in (
        SectionRules(BASE_GENDER, GenderAnswer, 2, fill_blanks, gender_problem),
        SectionRules(BASE_LOCATION, LocationAnswer, 2, fill_blanks, location_problem),
        SectionRules(BASE_CATEG_LANG_TOPICS, CategLangTopicsAnswer, 2, fill_blanks, categ_lang_topics_problem),
        SectionRules(AUDIENCE_AGE_GENDER, AudienceAgeGenderAnswer, 2, replace, age_gender_problem),
        SectionRules(AUDIENCE_CITIES, AudienceCitiesAnswer, 2, replace, cities_problem),
        SectionRules(
            GENDER_LOCATION_LANG,
            GenderLocationLangAnswer,
            1,
            replace,
            gender_location_lang_problem,
            several_objects=True,
        ),
    )
}


# Post-processing


def seeded_random(*parts: object) -> random.Random:
    """A generator seeded by a stable hash of ``parts`` (Python's ``hash()`` changes per process)."""
    digest = hashlib.blake2b("\x1f".join(str(part) for part in parts).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


class BaselineError(BeatError, ValueError):
    """The age/gender baseline file is missing or malformed."""

    decision = Decision.DEFINITIVE


@dataclass(frozen=True, slots=True)
class AgeGenderBaseline:
    """Per category, the 14 audience shares in ``AGE_GENDER_KEYS`` order."""

    rows: Mapping[str, tuple[float, ...]]

    def for_category(self, category: str | None) -> tuple[float, ...]:
        return self.rows.get((category or "").strip().lower(), self.rows["missing"])


def load_baseline(path: Path = BASELINE_FILE) -> AgeGenderBaseline:
    try:
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.reader(file)
            header = tuple(next(reader, ()))
            lines = [(reader.line_num, line) for line in reader if line]
    except OSError as exc:
        raise BaselineError(f"cannot read the age/gender baseline {path}: {exc}") from exc
    if header != ("category", *BASELINE_COLUMNS):
        raise BaselineError(f"{path}: expected the columns category, {', '.join(BASELINE_COLUMNS)}")
    rows: dict[str, tuple[float, ...]] = {}
    for number, line in lines:
        category, *cells = line
        try:
            shares = tuple(float(cell) for cell in cells)
        except ValueError:
            raise BaselineError(f"{path} line {number}: a share is not a number") from None
        if len(shares) != len(BASELINE_COLUMNS) or any(not 0 <= s <= 1 for s in shares):
            raise BaselineError(f"{path} line {number}: expected {len(BASELINE_COLUMNS)} shares in [0, 1]")
        if abs(sum(shares) - 1) > 0.01:
            raise BaselineError(f"{path} line {number}: the shares sum to {sum(shares):.3f}, not 1")
        key = category.strip().lower()
        if key in rows:
            raise BaselineError(f"{path} line {number}: category {category!r} appears twice")
        rows[key] = shares
    if "missing" not in rows:
        raise BaselineError(f"{path}: no 'Missing' row, the fallback for unknown categories")
    return AgeGenderBaseline(rows)


def normalise_age_gender(
    shares: Mapping[str, float], baseline: Sequence[float], rng: random.Random
) -> dict[str, float]:
    """Scale to a sum of 1, then move toward the category baseline for 50–100 epochs of gradient
    descent on (b − a)² (each epoch closes 2 % of the gap), and round."""
    values = [shares.get(key, 0.0) for key in AGE_GENDER_KEYS]
    total = sum(values)
    values = [value / total for value in values]
    for _ in range(rng.randint(*EPOCHS)):
        values = [a + LEARNING_RATE * 2 * (b - a) for a, b in zip(values, baseline, strict=True)]
    return {key: round(value, DECIMALS) for key, value in zip(AGE_GENDER_KEYS, values, strict=True)}


def spread_cities(shares: Mapping[str, float], rng: random.Random) -> dict[str, float]:
    """Largest first, ties broken by noise, normalised, scaled to 65–75 % of the audience, the rest
    under ``others``."""
    ordered = sorted(_named_cities(shares).items(), key=lambda item: item[1], reverse=True)
    ties = Counter(share for _, share in ordered)
    noisy = [
        (city, share + rng.uniform(-1, 1) * min(TIE_NOISE, share / 2) if ties[share] > 1 else share)
        for city, share in ordered
    ]
    noisy.sort(key=lambda item: item[1], reverse=True)
    total = sum(share for _, share in noisy)
    factor = rng.uniform(*CITIES_SHARE)
    spread = {city: round(share / total * factor, DECIMALS) for city, share in noisy}
    spread[OTHERS] = round(1 - sum(spread.values()), DECIMALS)
    return spread
