"""PowerSite: a site's green supply, storage, grid connection and forecast sources.

Cluster-scoped, short name ``psite``. One PowerSite per site: its ``nodeSelector`` picks
the nodes it powers, or, when the operator runs on a Karmada control plane
(``SUANDIAN_MODE=karmada``), its ``clusters`` name the Karmada member clusters it powers.
The planner treats a site's green supply (solar, wind, hydro, direct
green-power lines, storage discharge) as shared and finite, and the grid as filling the
rest at its carbon intensity, up to its import limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Annotated, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, HttpUrl, field_validator, model_validator

from suandian.api.meta import (
    ApiModel,
    Condition,
    Duration,
    Resource,
    ResourceList,
    Time,
    cel,
)

__all__ = [
    "BuiltinForecast",
    "CarbonAwareSdkForecast",
    "ConfigMapKeyRef",
    "CsvForecast",
    "ElectricityMapsForecast",
    "ForecastProvider",
    "ForecastSource",
    "ForecastSpec",
    "GreenForecastSummary",
    "GreenSource",
    "GridConnection",
    "Location",
    "MemberClusters",
    "Placement",
    "PowerSite",
    "PowerSiteSpec",
    "PowerSiteStatus",
    "PrometheusForecast",
    "SecretKeyRef",
    "SourceType",
    "Storage",
    "WattTimeForecast",
]

MAX_KW = 10_000_000.0  # 10 GW: larger than any single data-centre site or green line
MAX_CARBON_G_PER_KWH = 2000.0  # lignite is ~1,100 g/kWh; 2,000 leaves room, catches unit slips


class SourceType(StrEnum):
    SOLAR = "solar"
    WIND = "wind"
    HYDRO = "hydro"
    DIRECT_GREEN = "directGreen"


class Location(ApiModel):
    """Where the site is: solar geometry and local time depend on it."""

    latitude: float = Field(ge=-90, le=90)
    """Degrees north, from -90 to 90 (Dunhuang, Gansu: 40.1)."""
    longitude: float = Field(ge=-180, le=180)
    """Degrees east, from -180 to 180 (Dunhuang, Gansu: 94.7)."""
    time_zone: str = Field(default="Asia/Shanghai", min_length=1)
    """IANA time zone name, e.g. ``Asia/Shanghai``; used for local daily profiles."""

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"{value!r} is not an IANA time zone; use a name like 'Asia/Shanghai'"
            ) from exc
        return value


class GreenSource(ApiModel):
    """One green power source that feeds the site: a solar plant, a wind farm, a hydro
    share or a direct green-power line (直连绿电)."""

    type: SourceType
    """``solar``, ``wind``, ``hydro`` or ``directGreen``."""
    name: str | None = Field(default=None, max_length=253)
    """A label for people and metrics, e.g. ``dunhuang-pv-2``."""
    capacity_kw: float = Field(alias="capacityKW", gt=0, le=MAX_KW)
    """Nameplate capacity available to this site, in kW (more than 0, at most 10 GW)."""
    capacity_factor: float | None = Field(default=None, gt=0, le=1)
    """Expected mean output as a fraction of capacity (hydro, directGreen); the built-in
    models use a regional default when unset."""
    hourly_profile: list[float] | None = Field(default=None, min_length=24, max_length=24)
    """For ``directGreen`` lines: the contracted share of capacity for each local hour,
    24 values from 0 to 1."""

    @field_validator("hourly_profile")
    @classmethod
    def _profile_in_range(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(not 0.0 <= v <= 1.0 for v in value):
            raise ValueError("every hourly share must be between 0 and 1")
        return value


class Storage(ApiModel):
    """A battery at the site: stores green surplus and offers it later. Give all of
    ``capacityKWh``, ``maxPowerKW`` and ``roundTripEfficiency``, or leave storage out."""

    capacity_kwh: float = Field(alias="capacityKWh", gt=0, le=MAX_KW * 24)
    """Usable energy capacity in kWh (more than 0)."""
    max_power_kw: float = Field(alias="maxPowerKW", gt=0, le=MAX_KW)
    """Largest charge or discharge power in kW (more than 0)."""
    round_trip_efficiency: float = Field(gt=0.5, le=1.0)
    """Energy out per energy in, from 0.5 (exclusive) to 1; lithium-ion is about 0.85-0.9."""
    initial_state_of_charge: float = Field(default=0.5, ge=0, le=1)
    """State of charge assumed when no measurement is available, 0 to 1."""
    min_state_of_charge: float = Field(default=0.1, ge=0, lt=1)
    """Reserve never used for compute, 0 to 1 (backup power)."""


class GridConnection(ApiModel):
    """The grid connection: it fills what green supply does not, at its carbon intensity."""

    import_limit_kw: float = Field(alias="importLimitKW", ge=0, le=MAX_KW)
    """Most power the site may draw from the grid, in kW (0 for an off-grid site)."""
    carbon_intensity: float = Field(ge=0, le=MAX_CARBON_G_PER_KWH)
    """Average grid carbon intensity in gCO2/kWh (China's 2022 national factor: 536.6);
    used when no forecast of it is available."""


class ForecastProvider(StrEnum):
    BUILTIN = "builtin"
    CSV = "csv"
    CARBON_AWARE_SDK = "carbonAwareSdk"
    ELECTRICITY_MAPS = "electricityMaps"
    WATT_TIME = "wattTime"
    PROMETHEUS = "prometheus"


class SecretKeyRef(ApiModel):
    """A key of a Secret in the operator's namespace (credentials are never logged)."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Secret."""
    key: str = Field(min_length=1, max_length=253)
    """Key within the Secret."""


class ConfigMapKeyRef(ApiModel):
    """A key of a ConfigMap that holds a CSV file."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the ConfigMap."""
    namespace: str | None = Field(default=None, max_length=63)
    """Namespace of the ConfigMap; the operator's own when unset."""
    key: str = Field(min_length=1, max_length=253)
    """Key within the ConfigMap."""


class BuiltinForecast(ApiModel):
    """Settings of the built-in physical models (solar geometry, wind power curve)."""

    region: str | None = Field(default=None, max_length=63)
    """Embedded grid region whose carbon profile to use, e.g. ``gansu``; the site's name
    when unset."""
    seed: int | None = Field(default=None, ge=0)
    """Seed of the weather processes, for reproducible forecasts."""


class CsvForecast(ApiModel):
    """CSV files of ``time,value`` rows, one per signal (a file path or a ConfigMap key).

    Optional ``p10`` and ``p90`` columns give the uncertainty band; ``time`` is ISO 8601,
    with an offset or as local wall-clock time in the site's time zone."""

    model_config: ClassVar[ConfigDict] = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.signals) || has(self.paths)",
                    "csv needs 'signals' (ConfigMap keys) or 'paths' (files)")
            ]
        }
    )

    signals: dict[str, ConfigMapKeyRef] | None = None
    """Signal name (``solar``, ``wind``, ``hydro``, ``directGreen`` in kW;
    ``carbonIntensity`` in gCO2/kWh; ``price``) to the ConfigMap key holding its CSV."""
    paths: dict[str, str] | None = None
    """Signal name to a CSV file path readable by the operator (or the CLI/simulator)."""
    units: dict[str, str] = Field(default_factory=dict)
    """Signal name to the unit of its values (``W``, ``kW``, ``MW``; ``g/kWh``,
    ``kg/kWh``, ``lbs/MWh``; ``CNY/kWh``, ``CNY/MWh``); defaults kW, g/kWh, CNY/kWh."""

    @model_validator(mode="after")
    def _some_source(self) -> CsvForecast:
        if not self.signals and not self.paths:
            raise ValueError("csv needs 'signals' (ConfigMap keys) or 'paths' (files)")
        return self


class CarbonAwareSdkForecast(ApiModel):
    """The Green Software Foundation Carbon Aware SDK WebAPI."""

    url: HttpUrl
    """Base URL of the WebAPI, e.g. ``http://carbon-aware-sdk.carbon:8080``."""
    location: str = Field(min_length=1)
    """Location name the SDK knows, e.g. ``eastus`` or a custom location."""


class ElectricityMapsForecast(ApiModel):
    """Electricity Maps v3 carbon-intensity forecast."""

    url: HttpUrl = HttpUrl("https://api.electricitymap.org/v3")
    """API base URL."""
    zone: str = Field(min_length=1)
    """Zone key, e.g. ``CN``."""
    token_secret_ref: SecretKeyRef
    """Secret key holding the ``auth-token``."""


class WattTimeForecast(ApiModel):
    """WattTime v3 forecast of the marginal operating emissions rate (``co2_moer``)."""

    url: HttpUrl = HttpUrl("https://api.watttime.org")
    """API base URL."""
    region: str = Field(min_length=1)
    """WattTime region abbreviation, e.g. ``CAISO_NORTH``."""
    username_secret_ref: SecretKeyRef
    """Secret key holding the WattTime username."""
    password_secret_ref: SecretKeyRef
    """Secret key holding the WattTime password."""


class PrometheusForecast(ApiModel):
    """PromQL range queries, for sites whose microgrid or SCADA exports to Prometheus."""

    url: HttpUrl
    """Prometheus base URL, e.g. ``http://prometheus.monitoring:9090``."""
    queries: dict[str, str] = Field(min_length=1)
    """Signal name (as for ``csv``) to the PromQL query giving it over the horizon (e.g. a
    forecast exporter's series, or ``... offset 1d`` for day-ahead persistence)."""
    units: dict[str, str] = Field(default_factory=dict)
    """Signal name to the unit of the query's values; Prometheus base units by default
    (``W`` for power, ``g/kWh`` for carbon intensity)."""


class ForecastSource(ApiModel):
    """Where one kind of forecast comes from."""

    model_config: ClassVar[ConfigDict] = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(f"self.provider != '{p.value}' || has(self.{p.value})",
                    f"provider {p.value} needs its settings block '{p.value}'")
                for p in ForecastProvider
                if p is not ForecastProvider.BUILTIN
            ]
        }
    )

    provider: ForecastProvider = ForecastProvider.BUILTIN
    """``builtin``, ``csv``, ``carbonAwareSdk``, ``electricityMaps``, ``wattTime`` or
    ``prometheus``; the block of the same name holds its settings."""
    builtin: BuiltinForecast | None = None
    """Settings of the built-in models."""
    csv: CsvForecast | None = None
    """Settings of the CSV provider."""
    carbon_aware_sdk: CarbonAwareSdkForecast | None = None
    """Settings of the Carbon Aware SDK provider."""
    electricity_maps: ElectricityMapsForecast | None = None
    """Settings of the Electricity Maps provider."""
    watt_time: WattTimeForecast | None = None
    """Settings of the WattTime provider."""
    prometheus: PrometheusForecast | None = None
    """Settings of the Prometheus provider."""

    @model_validator(mode="after")
    def _block_present(self) -> ForecastSource:
        if self.provider is not ForecastProvider.BUILTIN and getattr(
            self, _PROVIDER_FIELD[self.provider]
        ) is None:
            raise ValueError(
                f"provider {self.provider.value} needs its settings block "
                f"'{self.provider.value}'"
            )
        return self

    def secret_refs(self) -> list[SecretKeyRef]:
        """The Secret keys the chosen provider reads its credentials from."""
        field = _PROVIDER_FIELD.get(self.provider)
        block = getattr(self, field) if field else None
        if block is None:
            return []
        values = (getattr(block, name) for name in type(block).model_fields)
        return [v for v in values if isinstance(v, SecretKeyRef)]

    def configmap_refs(self) -> dict[str, ConfigMapKeyRef]:
        """Signal name to the ConfigMap key holding its CSV (the csv provider's signals)."""
        if self.provider is ForecastProvider.CSV and self.csv is not None:
            return dict(self.csv.signals or {})
        return {}


_PROVIDER_FIELD = {
    ForecastProvider.CSV: "csv",
    ForecastProvider.CARBON_AWARE_SDK: "carbon_aware_sdk",
    ForecastProvider.ELECTRICITY_MAPS: "electricity_maps",
    ForecastProvider.WATT_TIME: "watt_time",
    ForecastProvider.PROMETHEUS: "prometheus",
}
_SUPPLY_PROVIDERS = (ForecastProvider.BUILTIN, ForecastProvider.CSV, ForecastProvider.PROMETHEUS)


class ForecastSpec(ApiModel):
    """Where the site's forecasts come from and how fresh they must be."""

    model_config: ClassVar[ConfigDict] = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.supply) || self.supply.provider in "
                    + str([p.value for p in _SUPPLY_PROVIDERS]),
                    "supply forecasts come from builtin, csv or prometheus; "
                    "the carbon-intensity services only forecast the grid",
                    ".supply.provider",
                )
            ]
        }
    )

    supply: ForecastSource = Field(default_factory=ForecastSource)
    """Green supply by source (``builtin``, ``csv`` or ``prometheus``)."""
    carbon: ForecastSource = Field(default_factory=ForecastSource)
    """Grid carbon intensity (any provider)."""
    refresh_interval: Duration = Field(default="15m", validate_default=True)
    """How often to fetch a new forecast, e.g. ``15m``."""
    max_staleness: Duration = Field(default="6h", validate_default=True)
    """How long the last good forecast is trusted when the provider fails; after that the
    site is planned as all-grid (no green) until the provider recovers."""

    @field_validator("supply")
    @classmethod
    def _supply_provider(cls, value: ForecastSource) -> ForecastSource:
        if value.provider not in _SUPPLY_PROVIDERS:
            raise ValueError(
                "supply forecasts come from builtin, csv or prometheus; "
                f"{value.provider.value} only forecasts grid carbon intensity"
            )
        return value


class MemberClusters(ApiModel):
    """The Karmada member clusters a site powers: by name, or by labels of their
    ``cluster.karmada.io/v1alpha1`` ``Cluster`` objects (exactly one of the two)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.names) != has(self.selector)",
                    "clusters needs exactly one of 'names' (Cluster names) or 'selector' "
                    "(Cluster labels)")
            ]
        }
    )

    names: list[Annotated[str, Field(min_length=1, max_length=253)]] | None = Field(
        default=None, min_length=1, max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "set"})
    """Names of the member clusters, e.g. ``[gansu-1]``."""
    selector: dict[str, str] | None = Field(default=None, min_length=1)
    """Labels every member cluster of the site carries, e.g. ``suandian.io/hub: gansu``.
    At least one label: an empty selector would claim every member."""

    @model_validator(mode="after")
    def _one_way(self) -> MemberClusters:
        if (self.names is None) == (self.selector is None):
            raise ValueError("clusters needs exactly one of 'names' (Cluster names) or "
                             "'selector' (Cluster labels)")
        return self

    def picks(self, name: str, labels: Mapping[str, str]) -> bool:
        """Whether this names the member cluster ``name`` with ``labels``."""
        if self.names is not None:
            return name in self.names
        selector = self.selector or {}
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class Placement(Mapping[str, str]):
    """Where a site's work goes, as backends read it: the site's node labels (the
    mapping itself: empty when the site names member clusters) and its Karmada member
    clusters (``clusters``: None when it names nodes).

    A mapping so that whatever reads a node selector (node affinity, the capacity view,
    Kueue's flavors) reads it unchanged; only the Karmada backend reads ``clusters``."""

    __slots__ = ("_labels", "clusters")

    def __init__(self, labels: Mapping[str, str] | None = None,
                 clusters: MemberClusters | None = None) -> None:
        self._labels = dict(labels or {})
        self.clusters = clusters

    def __getitem__(self, key: str) -> str:
        return self._labels[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._labels)

    def __len__(self) -> int:
        return len(self._labels)

    def __repr__(self) -> str:
        return f"Placement({self._labels!r}, clusters={self.clusters!r})"


class PowerSiteSpec(ApiModel):
    """The desired description of a site's power."""

    model_config: ClassVar[ConfigDict] = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.nodeSelector) != has(self.clusters)",
                    "a PowerSite names exactly one of 'nodeSelector' (its nodes, in one "
                    "cluster) or 'clusters' (its Karmada member clusters, in Karmada mode)")
            ]
        }
    )

    node_selector: dict[str, str] | None = Field(default=None, min_length=1)
    """Labels that pick the site's nodes, e.g. ``topology.kubernetes.io/region: gansu``.
    At least one label: an empty selector would claim every node. Exactly one of this and
    ``clusters``."""
    clusters: MemberClusters | None = None
    """Karmada mode: the member clusters the site powers (by name or by labels on their
    ``Cluster`` objects) instead of a node selector."""
    location: Location
    """Where the site is."""
    supply: list[GreenSource] = Field(default_factory=list, max_length=64)
    """Green sources feeding the site; empty for a grid-only site."""
    storage: Storage | None = None
    """Battery storage, if any."""
    grid: GridConnection
    """The grid connection."""
    pue: float = Field(default=1.3, ge=1.0, le=3.0)
    """Power usage effectiveness: facility power per IT power, from 1.0 to 3.0 (China's
    national hub target for new data centres: 1.25 or less)."""
    forecast: ForecastSpec = Field(default_factory=ForecastSpec)
    """Where forecasts come from."""

    @model_validator(mode="after")
    def _nodes_or_clusters(self) -> PowerSiteSpec:
        if (self.node_selector is None) == (self.clusters is None):
            raise ValueError(
                "a PowerSite names exactly one of 'nodeSelector' (its nodes, in one "
                "cluster) or 'clusters' (its Karmada member clusters, in Karmada mode)")
        return self

    @property
    def placement(self) -> Placement:
        """The site's node labels and member clusters, as backends read them."""
        return Placement(self.node_selector, self.clusters)


class GreenForecastSummary(ApiModel):
    """The green supply forecast over the horizon, summarised for people."""

    next_6h_average_kw: float | None = Field(default=None, alias="next6hAverageKW")
    """Mean green power over the next 6 hours, kW."""
    next_24h_average_kw: float | None = Field(default=None, alias="next24hAverageKW")
    """Mean green power over the next 24 hours, kW."""
    peak_kw: float | None = Field(default=None, alias="peakKW")
    """Highest green power over the horizon, kW."""
    peak_at: Time | None = None
    """When that peak is expected."""


class PowerSiteStatus(ApiModel):
    """What the operator last observed and forecast for the site."""

    green_power_kw: float | None = Field(default=None, alias="greenPowerKW")
    """Green power available now, kW (all sources plus storage discharge)."""
    green_power_by_source_kw: dict[str, float] = Field(
        default_factory=dict, alias="greenPowerBySourceKW"
    )
    """Green power available now by source, kW."""
    green_forecast: GreenForecastSummary | None = None
    """The green supply forecast, summarised."""
    grid_carbon_intensity: float | None = None
    """Grid carbon intensity now, gCO2/kWh."""
    compute_power_kw: float | None = Field(default=None, alias="computePowerKW")
    """Power drawn by the compute Suandian placed here, kW, including PUE."""
    headroom_kw: float | None = Field(default=None, alias="headroomKW")
    """Green power not used by compute now, kW; negative when the grid fills the gap."""
    nodes: int | None = Field(default=None, ge=0)
    """Nodes matched by ``nodeSelector`` (Karmada mode: Ready member clusters)."""
    allocatable: ResourceList = Field(default_factory=dict)
    """Allocatable resources summed over the site's nodes."""
    forecast_source: str | None = None
    """Which forecast is in use: the provider's name, ``lastGood`` or ``conservative``."""
    forecast_updated: Time | None = None
    """When the forecast in use was obtained."""
    conditions: list[Condition] = Field(default_factory=list)
    """``ForecastReady`` and ``Degraded``, with reasons."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The ``metadata.generation`` this status describes."""


class PowerSite(Resource):
    """A site that supplies power to a set of nodes."""

    KIND: ClassVar[str] = "PowerSite"
    PLURAL: ClassVar[str] = "powersites"

    kind: str = Field(default="PowerSite", pattern=r"^PowerSite$")
    spec: PowerSiteSpec
    status: PowerSiteStatus | None = None
