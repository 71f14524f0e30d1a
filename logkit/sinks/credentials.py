"""What to tell an operator when Google credentials are missing or refused (Firestore and
BigQuery map their client errors through this, so the message names the fix, not a class)."""

from __future__ import annotations

NO_CREDENTIALS = (
    "no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS to a service account key "
    "file, run `gcloud auth application-default login`, or run with an attached service "
    "account (for the emulators set FIRESTORE_EMULATOR_HOST / BIGQUERY_EMULATOR_HOST)"
)
REFUSED = (
    "the Google credentials were refused ({name}): check the service account, its key and its "
    "roles on the project"
)


def credentials_problem(exc: BaseException) -> str | None:
    """An actionable line for a credentials error of google-auth, or None for anything else."""
    try:
        from google.auth import exceptions as auth
    except ImportError:  # the gcp extra is not installed: nothing of google-auth can be raised
        return None
    if isinstance(exc, auth.DefaultCredentialsError):
        return NO_CREDENTIALS
    if isinstance(exc, auth.RefreshError | auth.UserAccessTokenError):
        return REFUSED.format(name=type(exc).__name__)
    return None
