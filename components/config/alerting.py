"""Who hears an alert: receivers per severity, for each tenant and for the platform team. The URLs
and keys that reach Slack, PagerDuty or a webhook are credentials, so a receiver names keys of the
platform's `rayplane:secrets` instead of holding them."""

from urllib.parse import urlparse

from pydantic import Field, model_validator

from components.config.base import Model

SEVERITIES = ("page", "ticket")  # the `severity` label of every rule (components/slo.py)
URL_SECRETS = {"slackUrlSecret", "webhookUrlSecret"}  # Alertmanager refuses these unless http(s) URLs


class Receiver(Model):
    """One or more integrations that receive the same alerts."""

    slack_url_secret: str | None = Field(
        None, description="key of rayplane:secrets holding a Slack incoming-webhook URL (it names the channel)"
    )
    pagerduty_key_secret: str | None = Field(
        None, description="key of rayplane:secrets holding a PagerDuty Events API v2 routing key"
    )
    webhook_url_secret: str | None = Field(
        None, description="key of rayplane:secrets holding a URL that takes Alertmanager's webhook payload"
    )

    @property
    def secrets(self) -> dict[str, str]:
        """The secret key each integration names, by field alias."""
        return {k: v for k, v in self.model_dump(by_alias=True).items() if v is not None}

    @model_validator(mode="after")
    def _one(self) -> "Receiver":
        if not self.secrets:
            raise ValueError(f"name at least one of {', '.join(type(self).model_json_schema()['properties'])}")
        return self


class Alerts(Model):
    """Receivers by the severity label of the rules: a missing one takes the other's."""

    page: Receiver | None = Field(
        None, description="severity=page: act now (an error budget burning fast, a head down)"
    )
    ticket: Receiver | None = Field(None, description="severity=ticket: act today (a slow burn, restarts, queues)")

    def receivers(self) -> dict[str, Receiver]:
        """Each severity's receiver, the other's where one is missing; {} if neither is set."""
        page, ticket = self.page or self.ticket, self.ticket or self.page
        return {} if page is None else {"page": page, "ticket": ticket}


def _url(value: str) -> bool:
    url = urlparse(value)
    return url.scheme in ("http", "https") and bool(url.netloc)


def alerts_errors(alerts: Alerts, path: str, secrets: dict[str, str]) -> list[str]:
    """A receiver naming a secret the stack does not hold, or one whose value Alertmanager would
    refuse: GMP's operator then keeps the old config and says so only in its own log."""
    errors = []
    for severity in SEVERITIES:
        for field, key in (getattr(alerts, severity) or Receiver.model_construct()).secrets.items():
            if key not in secrets:
                errors.append(f"{path}.{severity}.{field}: no secret {key!r} in rayplane:secrets")
            elif field in URL_SECRETS and not _url(secrets[key]):
                errors.append(f"{path}.{severity}.{field}: secrets.{key} is not an http(s) URL with a host")
    return errors
