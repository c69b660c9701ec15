"""An OpenAI-compatible chat completions endpoint, so the GPT enrichment flows run offline.

``POST /openai/v1/chat/completions`` (OpenAI's path) and
``POST /openai/deployments/{deployment}/chat/completions`` (Azure OpenAI's) answer in the real
``chat.completion`` shape. The caller needs ``Authorization: Bearer <key>`` (Azure: ``api-key``);
without one the answer is OpenAI's 401 error body.

Which question was asked is read from the keys the system prompt names ("age_gender",
"cities", "topics", "languages" with "gender", "state", "gender"); the creator's handle from
the Instagram link in the user message. Answers are plausible JSON, deterministic per
(handle, question). Some handle prefixes change the behaviour:

- ``reask_…``: the first answer per (handle, question) leaves parts missing or "UNKNOWN" (for
  the audience questions, too few keys); every later answer is complete.
- ``garbage_…``: always prose, never JSON.
- ``multi_…``: the gender/location/languages answer holds two JSON objects separated by a blank
  line, a fan account's first and this creator's second.

A request naming no known question or no creator gets prose, as a real model would give.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from providers.sandbox.instagram import seeded

PREFIX = "/openai"

PROSE = "I'm sorry, but I can't share personal details about real people. Is there anything else I can help with?"

CITIES = (
    ("Mumbai", "Maharashtra"),
    ("Delhi", "Delhi"),
    ("Bengaluru", "Karnataka"),
    ("Hyderabad", "Telangana"),
    ("Chennai", "Tamil Nadu"),
    ("Kolkata", "West Bengal"),
    ("Pune", "Maharashtra"),
    ("Ahmedabad", "Gujarat"),
    ("Jaipur", "Rajasthan"),
    ("Lucknow", "Uttar Pradesh"),
    ("Chandigarh", "Chandigarh"),
    ("Kochi", "Kerala"),
    ("Indore", "Madhya Pradesh"),
    ("Bhopal", "Madhya Pradesh"),
    ("Patna", "Bihar"),
    ("Surat", "Gujarat"),
    ("Nagpur", "Maharashtra"),
    ("Guwahati", "Assam"),
    ("Bhubaneswar", "Odisha"),
    ("Dehradun", "Uttarakhand"),
    ("Visakhapatnam", "Andhra Pradesh"),
    ("Coimbatore", "Tamil Nadu"),
    ("Ludhiana", "Punjab"),
    ("Kanpur", "Uttar Pradesh"),
    ("Vadodara", "Gujarat"),
    ("Thiruvananthapuram", "Kerala"),
    ("Mysuru", "Karnataka"),
    ("Panaji", "Goa"),
    ("Ranchi", "Jharkhand"),
    ("Raipur", "Chhattisgarh"),
)
CATEGORIES = (
    "Sports",
    "Music",
    "Beauty",
    "Fashion",
    "Fitness",
    "Food",
    "Travel",
    "Gaming",
    "Technology",
    "Education",
    "Entertainment",
    "Comedy",
    "Lifestyle",
    "Parenting",
    "Finance",
    "Photography",
    "Dance",
)
LANGUAGES = ("English", "Hindi", "Marathi", "Tamil", "Telugu", "Bengali", "Kannada", "Malayalam", "Gujarati", "Punjabi")
TOPICS = (
    "daily vlogs",
    "outfit ideas",
    "skincare",
    "makeup tutorials",
    "street food",
    "home cooking",
    "recipes",
    "road trips",
    "budget travel",
    "hill stations",
    "beaches",
    "workouts",
    "yoga",
    "running",
    "diet tips",
    "cricket",
    "football",
    "gadgets",
    "smartphone reviews",
    "unboxing",
    "gaming streams",
    "esports",
    "memes",
    "stand-up",
    "bollywood",
    "music covers",
    "dance reels",
    "festivals",
    "weddings",
    "family",
    "parenting tips",
    "personal finance",
    "investing",
    "startups",
    "career advice",
    "study tips",
    "books",
    "photography tips",
    "pets",
    "home decor",
    "diy crafts",
    "motivation",
    "mental health",
    "sustainability",
    "cars",
    "bikes",
    "fashion hauls",
    "brand collaborations",
    "giveaways",
    "behind the scenes",
)
GENDERS = ("MALE", "FEMALE")
AGE_BUCKETS = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_WEIGHTS = (0.06, 0.36, 0.33, 0.14, 0.07, 0.03, 0.01)

BASE_GENDER = "base_gender"
BASE_LOCATION = "base_location"
BASE_CATEG_LANG_TOPICS = "base_categ_lang_topics"
AUDIENCE_AGE_GENDER = "audience_age_gender"
AUDIENCE_CITIES = "audience_cities"
GENDER_LOCATION_LANG = "gender_location_lang"

HANDLE_LINK = re.compile(r"instagram\.com/([A-Za-z0-9._]+)")


def question_of(system: str) -> str | None:
    """Which question a system prompt asks, from the JSON keys it names (most specific first)."""

    def names(key: str) -> bool:
        return f'"{key}"' in system

    if names("age_gender"):
        return AUDIENCE_AGE_GENDER
    if names("cities"):
        return AUDIENCE_CITIES
    if names("topics"):
        return BASE_CATEG_LANG_TOPICS
    if names("languages") and names("gender"):
        return GENDER_LOCATION_LANG
    if names("state"):
        return BASE_LOCATION
    if names("gender"):
        return BASE_GENDER
    return None


def _place(handle: str) -> dict[str, str]:
    city, state = seeded("openai-place", handle).choice(CITIES)
    return {"city": city, "state": state, "country": "India"}


def _gender(handle: str) -> str:
    return seeded("openai-gender", handle).choice(GENDERS)


def _languages(handle: str) -> list[str]:
    rng = seeded("openai-languages", handle)
    return ["English", *rng.sample(LANGUAGES[1:], rng.randint(1, 2))]


def _age_gender(handle: str) -> dict[str, float]:
    rng = seeded("openai-age-gender", handle)
    male = rng.uniform(0.3, 0.7)
    weights = [weight * rng.uniform(0.7, 1.3) for weight in AGE_WEIGHTS]
    total = sum(weights)
    shares: dict[str, float] = {}
    for age, weight in zip(AGE_BUCKETS, weights, strict=True):
        shares[f"{age} male"] = round(weight / total * male, 3)
        shares[f"{age} female"] = round(weight / total * (1 - male), 3)
    return shares


def _cities(handle: str) -> dict[str, float]:
    rng = seeded("openai-cities", handle)
    chosen = rng.sample([city for city, _ in CITIES], rng.randint(20, 25))
    weights = sorted((rng.uniform(0.2, 1.0) ** 2 for _ in chosen), reverse=True)
    scale = rng.uniform(0.7, 0.9) / sum(weights)
    shares = {city: round(weight * scale, 3) for city, weight in zip(chosen, weights, strict=True)}
    # Models often give the long tail one equal share; the flows break such ties.
    for city in chosen[-4:]:
        shares[city] = 0.01
    return shares


def complete_answer(question: str, handle: str) -> dict[str, Any]:
    """The full, valid answer to ``question`` for ``handle``."""
    if question == BASE_GENDER:
        return {"handle": handle, "gender": _gender(handle)}
    if question == BASE_LOCATION:
        return {"handle": handle, **_place(handle)}
    if question == BASE_CATEG_LANG_TOPICS:
        rng = seeded("openai-categories", handle)
        return {
            "handle": handle,
            "categories": rng.sample(CATEGORIES, rng.randint(1, 3)),
            "languages": _languages(handle),
            "topics": rng.sample(TOPICS, rng.randint(20, 25)),
        }
    if question == AUDIENCE_AGE_GENDER:
        return {"handle": handle, "platform": "instagram", "audience": {"age_gender": _age_gender(handle)}}
    if question == AUDIENCE_CITIES:
        return {"handle": handle, "platform": "instagram", "audience": {"cities": _cities(handle)}}
    if question == GENDER_LOCATION_LANG:
        place = _place(handle)
        return {
            "handle": handle,
            "country": place["country"],
            "city": place["city"],
            "state": place["state"],
            "gender": _gender(handle),
            "languages": _languages(handle),
        }
    raise ValueError(f"unknown question {question!r}")


def incomplete_answer(question: str, handle: str) -> dict[str, Any]:
    """A first answer with gaps, as a model gives now and then."""
    answer = complete_answer(question, handle)
    if question == BASE_GENDER:
        answer["gender"] = "UNKNOWN"
    elif question == BASE_LOCATION:
        answer.update(city="Unknown", state="")
    elif question == BASE_CATEG_LANG_TOPICS:
        answer["topics"] = []
    elif question == AUDIENCE_AGE_GENDER:
        shares = answer["audience"]["age_gender"]
        del shares["18-24 male"], shares["18-24 female"]
    elif question == AUDIENCE_CITIES:
        answer["audience"]["cities"] = dict(list(answer["audience"]["cities"].items())[:3])
    elif question == GENDER_LOCATION_LANG:
        answer.update(gender="unknown", city="")
    return answer


def _error(status: int, message: str, kind: str, code: str | None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status)


def _api_key(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("api-key") or None


def _tokens(text: str) -> int:
    # About four characters a token, as OpenAI's own rule of thumb has it.
    return max(1, len(text) // 4)


class OpenAIRoutes:
    def __init__(self) -> None:
        self._asked: Counter[tuple[str, str]] = Counter()

    def mount(self) -> Mount:
        return Mount(
            PREFIX,
            routes=[
                Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
                Route("/deployments/{deployment}/chat/completions", self.chat_completions, methods=["POST"]),
            ],
        )

    async def chat_completions(self, request: Request) -> JSONResponse:
        if _api_key(request) is None:
            return _error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
                None,
            )
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error", None)
        model = request.path_params.get("deployment") or (body.get("model") if isinstance(body, dict) else None)
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(model, str) or not model:
            return _error(400, "you must provide a model parameter", "invalid_request_error", None)
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
        ):
            return _error(
                400,
                "'messages' must be a non-empty list of messages with text content",
                "invalid_request_error",
                "invalid_value",
            )
        system = " ".join(m["content"] for m in messages if m.get("role") == "system")
        user = " ".join(m["content"] for m in messages if m.get("role") == "user")
        content = self._reply(question_of(system), HANDLE_LINK.search(user))
        prompt_tokens = sum(_tokens(m["content"]) for m in messages)
        completion_tokens = _tokens(content)
        return JSONResponse(
            {
                "id": "chatcmpl-" + hashlib.blake2b(f"{user}\x1f{content}".encode(), digest_size=12).hexdigest(),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                "system_fingerprint": "fp_sandbox",
            }
        )

    def _reply(self, question: str | None, link: re.Match[str] | None) -> str:
        if question is None or link is None:
            return PROSE
        handle = link.group(1)
        if handle.startswith("garbage_"):
            return PROSE
        self._asked[(handle, question)] += 1
        if handle.startswith("reask_") and self._asked[(handle, question)] == 1:
            return json.dumps(incomplete_answer(question, handle))
        answer = json.dumps(complete_answer(question, handle), indent=2)
        if handle.startswith("multi_") and question == GENDER_LOCATION_LANG:
            fan = complete_answer(question, f"{handle}.fans")
            return json.dumps(fan, indent=2) + "\n\n" + answer
        return answer
