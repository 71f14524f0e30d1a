"""Build the gate from configuration: the pseudonym key and the policy of each storage class.

Policy ids: ``default`` redacts every kind; ``none`` passes values through (dev only); any
other id is ``default`` minus the kinds ``[redaction.allow]`` lists for it (never secrets).
"""

from __future__ import annotations

import os

from logkit.config import RedactionConfig, Settings, load_settings
from logkit.envelope import Env, StorageClass
from logkit.errors import ConfigError, RedactionError
from logkit.redaction.gate import PassThroughRedactor, Redactor
from logkit.redaction.keys import create_once, provider_for
from logkit.redaction.sealing import KeyProvider


def master_key(config: RedactionConfig, env: Env) -> bytes:
    """The pseudonym master key: configured, or in dev a generated local file."""
    if config.key is not None:
        return config.key.get_secret_value().encode()
    path = config.key_file
    if path is None:
        if env is not Env.DEV:
            raise ConfigError(
                "no redaction key: set redaction.key (LOGKIT_REDACTION__KEY) or "
                "redaction.key_file; pseudonyms need a stable secret outside dev"
            )
        path = config.dev_key_file
        if not path.exists():
            # Atomic: a second process starting at the same moment reads the winner's key,
            # never an empty, half-written file.
            return create_once(path, os.urandom(32).hex().encode())
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read redaction key file {path}: {exc.strerror}") from None


def default_key() -> bytes:
    """The key of the gate before ``configure()``: what ``configure()`` would use.

    Read from the same settings (``LOGKIT_*``, ``LOGKIT_CONFIG``) when the first value needs a
    pseudonym. Without one outside dev this is a RedactionError for that value: the caller gets
    an error, never the value unredacted.
    """
    try:
        settings = load_settings()
        return master_key(settings.redaction, settings.env)
    except ConfigError as exc:
        raise RedactionError(f"the redaction gate has no key: {exc}") from None


def build_gate(settings: Settings) -> tuple[Redactor, dict[StorageClass, Redactor]]:
    """The default redactor (ops, log lines, outbound calls) and the per-class ones."""
    from logkit.redaction.engine import RegexRedactor

    config = settings.redaction
    key = master_key(config, settings.env)
    built: dict[str, Redactor] = {}

    def make(policy: str) -> Redactor:
        if policy not in built:
            if policy == "none":
                if settings.env is not Env.DEV:
                    raise ConfigError(f"redaction policy 'none' is refused in {settings.env}")
                built[policy] = PassThroughRedactor()
            else:
                built[policy] = RegexRedactor(
                    key, policy=policy, allow=frozenset(config.allow.get(policy, ()))
                )
        return built[policy]

    unknown = sorted(set(config.policies) - {c.value for c in StorageClass})
    if unknown:
        raise ConfigError(f"redaction.policies names unknown storage classes: {unknown}")
    default = make(config.policies.get(StorageClass.OPS.value, "default"))
    per_class = {StorageClass(c): make(p) for c, p in config.policies.items()}
    return default, per_class


def key_provider(settings: Settings) -> KeyProvider:
    """Keys of sealed payloads, as ``[redaction] key_provider`` says (logkit.redaction.keys)."""
    return provider_for(settings)
