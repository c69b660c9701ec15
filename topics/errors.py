"""The one root of Beat's exceptions, and the resilience decision each class carries.

Every exception Beat defines is a ``BeatError``; a family sets ``decision``, which says what the failure
means for the request or the process that meets it. Catch at the level you care about.

    BeatError                           .decision
    ├── ProviderError                   providers/errors.py; transient or definitive per class (its own tree),
    │                                   per instance for the verdicts on a whole fetch type
    ├── DependencyDown                  outage       core/outage.py: Postgres, Redis or the broker is away
    ├── RateLimitConfigError            definitive   providers/ratelimit.py
    ├── BudgetConfigError               definitive   providers/budgets.py: a BEAT_BUDGETS key without a scope
    ├── flow errors (agents/)
    │   ├── Rejected                    poison       a record that cannot be processed at all: dead-lettered
    │   ├── RecordTooLarge              poison       an event over the message size limit
    │   ├── UnknownFlow, FlowRefused    poison       a flow that does not run here
    │   ├── AnswerInvalid               definitive   a model's reply that is no answer; the flow asks again
    │   └── PromptsError, BaselineError definitive   a prompt or baseline file that is missing or malformed
    ├── sink errors (sinks/, topics/)
    │   ├── Refused                     poison       a submission Beat will not record (TooLarge, InvalidParams)
    │   ├── Unreadable                  poison       a status record that names no request
    │   ├── Unproducible                poison       a stored request that can never be produced
    │   ├── Unstorable                  poison       a value the store cannot hold
    │   ├── AssetStoreError             transient    the asset store refused or failed a read or a write
    │   ├── UnknownRequest              definitive   no request has this id
    │   ├── NotReopenable               definitive   a request that cannot be re-driven now
    │   ├── LoopBroken                  definitive   a loop failed too often on something waiting cannot fix
    │   └── Stopped                     outage       the sink stopped while it waited out an outage
    ├── private signals                 _SourceFailed (crawler), _ConnectionLost (http): their failure's decision
    └── wiring errors (app/)
        ├── SettingsError               definitive   invalid configuration; the CLI exits 1 with its message
        ├── EmbeddedServiceError        definitive   an embedded service did not start
        └── Failure (Usage)             definitive   a command that cannot do what it was asked

The decisions:

- ``definitive``: the failure is the verdict; trying again cannot change it (a request ends FAILED);
- ``transient``: another try could succeed (a request is retried, spending an attempt);
- ``poison``: the input itself cannot be processed; it is refused or dead-lettered with the reason;
- ``outage``: a dependency is away; nobody's verdict, so nothing fails and no attempt is spent.

Where callers caught a builtin before the root existed (``ValueError``, ``LookupError``, ``RuntimeError``),
the class keeps that builtin as a second base.
"""

from __future__ import annotations

from enum import StrEnum


class Decision(StrEnum):
    DEFINITIVE = "definitive"
    TRANSIENT = "transient"
    POISON = "poison"
    OUTAGE = "outage"


class BeatError(Exception):
    # Each family sets it; the root leaves it unset so that a class which forgets is caught by the tree test.
    # The verdicts on a whole fetch type (providers/errors.py) set it per instance.
    decision: Decision
