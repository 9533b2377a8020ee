"""The errors settlewatch raises on purpose, in one tree; anything else is a bug.

    SettlewatchError
    ├── BadInput            the data is wrong: 4xx at the API, a dead letter in a consumer
    │   ├── ProblemError        (common.problems) an HTTP request refused, as problem+json
    │   ├── UnknownMerchant     (matcher.core.matcher) a transaction of a merchant not yet seen
    │   ├── Invalid             (alerts.core.lifecycle) an alert change that is not allowed
    │   ├── FileRejected        (settlementfiles.model) a settlement file unreadable as its format
    │   ├── Blocked             (common.webhook_guard) a webhook URL that reaches a private address
    │   ├── CalendarFileError   (common.calendar_files) a file unreadable as a calendar year
    │   ├── ApiRefused          (console.clients) a service refused the console's call (4xx)
    │   └── SignInRequired      (console.context) a console page asked for without a session
    ├── Unavailable         a dependency did not answer in time: 503 + Retry-After, or a loop
    │   │                   restart; retrying later is right
    │   ├── BrokerUnavailable   (common.publisher) the broker did not acknowledge
    │   ├── WorkerLost          (recon.parsing) the parsing process ended under a file
    │   └── ServiceUnavailable  (console.clients) a service did not answer the console in time
    ├── Fenced              another instance took over what this one worked on: stop, resume
    │   └── LostOwnership       (matcher.store) the matcher lost a partition's generation
    ├── ConfigError         the environment holds a value settlewatch cannot use (exit 2)
    │   └── SealingError        (common.sealing) no key of SETTLEWATCH_SECRET_KEY opens a secret
    └── UsageError          a command cannot do what it was asked as asked (exit 2)
        ├── DeadLetterError     (cli.deadletters)
        ├── ImportFailed        (cli.importing) a file that cannot be sent to ingest
        ├── CalendarLoadFailed  (cli.calendars) a calendar file unreadable, or not sendable
        ├── FolderError         (cli.watching) a folder that cannot be watched
        ├── StackError          (devstack.up)
        └── DemoError           (demo.run)

HTTP answers are mapped from this tree in one place, ``common.problems``; the consumers tell
the infrastructure's faults from the data's with ``common.faults``.
"""

from __future__ import annotations

__all__ = ["BadInput", "ConfigError", "Fenced", "SettlewatchError", "Unavailable", "UsageError"]


class SettlewatchError(Exception):
    """The root: every error settlewatch raises on purpose."""


class BadInput(SettlewatchError):
    """The data is wrong; sending it again will not help."""


class Unavailable(SettlewatchError):
    """A dependency (database, broker) did not answer in time; retrying later may help."""


class Fenced(SettlewatchError):
    """Another instance took over the work this one was doing."""


class ConfigError(SettlewatchError):
    """The environment holds a value settlewatch cannot use; the message names the variable."""


class UsageError(SettlewatchError):
    """A command cannot do what it was asked as asked; the message says why."""
