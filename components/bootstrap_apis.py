"""The Google APIs the bootstrap project and each environment's project must serve before anything
else is built there (components/ci.py lists them). Kept on when the stack goes: other stacks use them."""

import pulumi
import pulumi_gcp as gcp

from components import ci
from components.config.bootstrap import BootstrapStack


class ProjectApis(pulumi.ComponentResource):
    def __init__(self, config: BootstrapStack, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rayplane:bootstrap:ProjectApis", "apis", None, opts)
        wanted = [(config.project, api) for api in ci.BOOTSTRAP_APIS]
        wanted += [(env.project, api) for env in config.environments for api in ci.ENVIRONMENT_APIS]
        self.services = [
            gcp.projects.Service(
                f"{project}-{api.split('.')[0]}",
                project=project,
                service=api,
                disable_on_destroy=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for project, api in wanted
        ]
        self.register_outputs({})
