"""Who hears an alert: receivers per severity, for each tenant and for the platform team. The URLs
and keys that reach Slack, PagerDuty or a webhook are credentials, so a receiver names keys of the
platform's `rayplane:secrets` instead of holding them."""

from pydantic import Field, model_validator

from components.config.base import Model


class Receiver(Model):
    """One or more integrations that receive the same alerts."""

    slack_url_secret: str | None = Field(None, description="key of rayplane:secrets holding a Slack webhook URL")
    slack_channel: str | None = Field(None, description="the Slack channel (default: the webhook's)")
    pagerduty_key_secret: str | None = Field(
        None, description="key of rayplane:secrets holding a PagerDuty Events API v2 routing key"
    )
    webhook_url_secret: str | None = Field(
        None, description="key of rayplane:secrets holding a URL that takes Alertmanager's webhook payload"
    )

    @property
    def secrets(self) -> dict[str, str]:
        """The secret key each integration names, by field alias."""
        names = ("slackUrlSecret", "pagerdutyKeySecret", "webhookUrlSecret")
        values = (self.slack_url_secret, self.pagerduty_key_secret, self.webhook_url_secret)
        return {name: key for name, key in zip(names, values, strict=True) if key is not None}

    @model_validator(mode="after")
    def _one(self) -> "Receiver":
        if not self.secrets:
            raise ValueError("name at least one of slackUrlSecret, pagerdutyKeySecret, webhookUrlSecret")
        if self.slack_channel and not self.slack_url_secret:
            raise ValueError("slackChannel: only with slackUrlSecret")
        return self


class Alerts(Model):
    """Receivers by the severity label of the rules (components/slo.py): a missing one takes the other's."""

    page: Receiver | None = Field(
        None, description="severity=page: act now (an error budget burning fast, a head down)"
    )
    ticket: Receiver | None = Field(None, description="severity=ticket: act today (a slow burn, restarts, queues)")

    def receivers(self) -> dict[str, Receiver]:
        """Each severity's receiver, the other's where one is missing; {} if neither is set."""
        page, ticket = self.page or self.ticket, self.ticket or self.page
        return {} if page is None else {"page": page, "ticket": ticket}


def alerts_errors(alerts: Alerts, path: str, secrets: dict[str, str]) -> list[str]:
    """A receiver naming a secret the stack does not hold."""
    return [
        f"{path}.{severity}.{field}: no secret {key!r} in rayplane:secrets"
        for severity in ("page", "ticket")
        if (receiver := getattr(alerts, severity)) is not None
        for field, key in receiver.secrets.items()
        if key not in secrets
    ]
