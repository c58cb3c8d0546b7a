"""What every cluster add-on shares: a pinned Helm chart installed with typed values, and the
component base that the install order in `components/addons/__init__.py` builds."""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import Model, PlatformStack


@dataclass(frozen=True)
class Chart:
    """An official Helm chart at a pinned version, installed as one release in its namespace."""

    release: str  # the Helm release's name
    chart: str  # a chart name in `repo`, or an oci:// reference
    version: str
    namespace: str
    repo: str | None = None  # None for an oci:// chart

    def install(self, logical_name: str, values: Model, opts: pulumi.ResourceOptions) -> k8s.helm.v3.Release:
        """The release (Pulumi waits for its resources to be ready before what depends on it)."""
        return k8s.helm.v3.Release(
            logical_name,
            name=self.release,
            chart=self.chart,
            version=self.version,
            repository_opts={"repo": self.repo} if self.repo else None,
            namespace=self.namespace,
            create_namespace=True,
            values=values.model_dump(by_alias=True, exclude_none=True),
            opts=opts,
        )


class AddOn(pulumi.ComponentResource):
    """A cluster add-on. Each one is built as `AddOn(plan, after, opts)` from the platform's plan,
    where `after` holds the `ready` resources of the add-ons it is ordered behind."""

    @property
    def ready(self) -> pulumi.Resource:
        """What an add-on ordered behind this one waits for: its Helm release (Pulumi waits for the
        release's resources to be ready), or all of it when it has none."""
        return getattr(self, "release", self)

    @staticmethod
    def wanted(config: PlatformStack) -> bool:
        """Whether this platform installs the add-on."""
        return True
