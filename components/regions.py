"""Google Cloud regions and their zones (Compute Engine "Regions and zones", 2026): a location that
is not here is refused at plan time instead of failing the cluster's creation. A region that opens
after this list was written is one line to add."""

ABC = ("a", "b", "c")

ZONES: dict[str, tuple[str, ...]] = {
    "africa-south1": ABC,
    "asia-east1": ABC,
    "asia-east2": ABC,
    "asia-northeast1": ABC,
    "asia-northeast2": ABC,
    "asia-northeast3": ABC,
    "asia-south1": ABC,
    "asia-south2": ABC,
    "asia-southeast1": ABC,
    "asia-southeast2": ABC,
    "australia-southeast1": ABC,
    "australia-southeast2": ABC,
    "europe-central2": ABC,
    "europe-north1": ABC,
    "europe-north2": ABC,
    "europe-southwest1": ABC,
    "europe-west1": ("b", "c", "d"),
    "europe-west2": ABC,
    "europe-west3": ABC,
    "europe-west4": ABC,
    "europe-west6": ABC,
    "europe-west8": ABC,
    "europe-west9": ABC,
    "europe-west10": ABC,
    "europe-west12": ABC,
    "me-central1": ABC,
    "me-central2": ABC,
    "me-west1": ABC,
    "northamerica-northeast1": ABC,
    "northamerica-northeast2": ABC,
    "northamerica-south1": ABC,
    "southamerica-east1": ABC,
    "southamerica-west1": ABC,
    "us-central1": ("a", "b", "c", "f"),
    "us-east1": ("b", "c", "d"),
    "us-east4": ABC,
    "us-east5": ABC,
    "us-south1": ABC,
    "us-west1": ABC,
    "us-west2": ABC,
    "us-west3": ABC,
    "us-west4": ABC,
}
GKE_MAX_NODES_PER_ZONE = 1000  # GKE quotas and limits: nodes per node pool per zone


def zones_of(location: str) -> tuple[str, ...]:
    """The zones a cluster at `location` (a region or a zone) puts a pool's nodes in by default."""
    if location in ZONES:
        return tuple(f"{location}-{letter}" for letter in ZONES[location])
    return (location,)


def location_error(location: str) -> str | None:
    """Why `location` is not a Google Cloud region or zone, or None if it is one."""
    region, _, letter = location.rpartition("-")
    if location in ZONES or (region in ZONES and letter in ZONES[region]):
        return None
    if region in ZONES:
        known = ", ".join(f"{region}-{z}" for z in ZONES[region])
        return f"{location} is not a zone of {region} ({known})"
    return f"{location} is not a Google Cloud region or zone (components/regions.py lists them)"
