"""What a GPU node costs per hour: estimates for the render's cost summary, never a bill.

Prices are per region, per machine type with the GPUs it carries (G2, A2, A3) or per attached GPU
(N1 + T4, added to the N1 machine's price). A platform's `pricing` overrides them (negotiated
rates, other regions, current Spot prices). Committed-use and sustained-use discounts, disks,
network and the system pool are not included. By provisioning model: Spot at its table price;
flex-start at the on-demand price unless `pricing` says (Dynamic Workload Scheduler publishes
"discounts of up to 53% off of on-demand pricing", cloud.google.com/batch/docs/release-notes, and
discounts only A2, A3, A4 and H4D's GPUs, cloud.google.com/compute/docs/instances/about-flex-start-vms:
no list price per machine type is recorded here); a reservation at the on-demand price (its VMs are
paid for whether pods run on them or not).
"""

from components.config.platform import GpuNodePool, NodePrice, PlatformStack
from components.gpu import ACCELERATORS

AS_OF = "2026-11-25"
SOURCE = "Google Cloud list prices (cloud.google.com/compute/vm-instance-pricing, cloud.google.com/spot-vms/pricing)"
ESTIMATE = (
    f"USD estimates from {SOURCE} as recorded on {AS_OF} (Spot prices change as often as daily), or the"
    " platform's `pricing`; no discounts, disks or network"
)


def _price(on_demand: float, spot: float | None = None) -> NodePrice:
    return NodePrice(onDemand=on_demand, spot=spot)


PRICES: dict[str, dict[str, NodePrice]] = {
    "us-central1": {
        "g2-standard-4": _price(0.7068, 0.2827),
        "g2-standard-8": _price(0.8536, 0.3414),
        "g2-standard-12": _price(1.0004, 0.4002),
        "g2-standard-16": _price(1.1472, 0.4589),
        "g2-standard-24": _price(2.0008, 0.8003),
        "g2-standard-32": _price(1.7343, 0.6937),
        "g2-standard-48": _price(4.0016, 1.6006),
        "g2-standard-96": _price(8.0032, 3.2012),
        "a2-highgpu-1g": _price(3.6734, 1.4693),
        "a2-highgpu-2g": _price(7.3468, 2.9386),
        "a2-highgpu-4g": _price(14.6935, 5.8773),
        "a2-highgpu-8g": _price(29.3871, 11.7545),
        "a2-megagpu-16g": _price(55.7395, 22.2956),
        "a2-ultragpu-1g": _price(5.0690, 2.0276),
        "a2-ultragpu-2g": _price(10.1380, 4.0552),
        "a2-ultragpu-4g": _price(20.2760, 8.1103),
        "a2-ultragpu-8g": _price(40.5520, 16.2206),
        "a3-highgpu-8g": _price(88.2489),
        "n1-standard-4": _price(0.1900, 0.0400),
        "n1-standard-8": _price(0.3800, 0.0800),
        "n1-standard-16": _price(0.7600, 0.1600),
        "n1-standard-32": _price(1.5200, 0.3200),
        "nvidia-tesla-t4": _price(0.3500, 0.1400),
    },
}


def _lookup(cfg: PlatformStack, key: str, provisioning: str) -> float | None:
    table = PRICES.get(cfg.cluster.region, {}).get(key, NodePrice())
    given = cfg.pricing.get(key, NodePrice())

    def price(field: str) -> float | None:
        return next((p for p in (getattr(given, field), getattr(table, field)) if p is not None), None)

    if provisioning == "spot":
        return price("spot")
    if provisioning == "flex-start" and (flex_start := price("flex_start")) is not None:
        return flex_start
    return price("on_demand")


def node_price(cfg: PlatformStack, pool: GpuNodePool) -> float | None:
    """USD per hour of one node of `pool` with its GPUs, or None where no price is known."""
    machine = _lookup(cfg, pool.machine_type, pool.provisioning)
    if ACCELERATORS[pool.accelerator].gpus_per_machine:  # the machine type's price includes its GPUs
        return machine
    gpu = _lookup(cfg, pool.accelerator, pool.provisioning)
    return None if machine is None or gpu is None else machine + pool.accelerator_count * gpu


def missing(cfg: PlatformStack, pool: GpuNodePool) -> str:
    """What to set for a pool whose price is unknown."""
    keys = [pool.machine_type]
    if not ACCELERATORS[pool.accelerator].gpus_per_machine:
        keys.append(pool.accelerator)
    spot = pool.provisioning == "spot"  # the others fall back to the on-demand price
    settings = " and ".join(f"pricing.{key}.{'spot' if spot else 'onDemand'}" for key in keys)
    kind = "Spot" if spot else "on-demand"
    return f"no {kind} price for {pool.name}'s {' + '.join(keys)} in {cfg.cluster.region}: set {settings}"
