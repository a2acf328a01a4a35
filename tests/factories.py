"""factory-boy factories shared by the test suite."""

import factory
from django.utils import timezone

from environment.models import Sensor, ThresholdProfile
from hospital.models import Building, Department, Floor, Site, Zone
from tracking.models import Asset, AssetType, Scanner, Tag


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site
        django_get_or_create = ("name",)

    name = "Test General"


class BuildingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Building

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"Building {n}")


class FloorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Floor

    building = factory.SubFactory(BuildingFactory)
    name = factory.Sequence(lambda n: f"Level {n}")
    level = factory.Sequence(lambda n: n)
    width_m = 40.0
    height_m = 20.0


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    name = factory.Sequence(lambda n: f"Department {n}")


class ZoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Zone

    floor = factory.SubFactory(FloorFactory)
    name = factory.Sequence(lambda n: f"Room {n}")
    kind = "room"
    polygon = factory.LazyFunction(lambda: [[0, 0], [5, 0], [5, 5], [0, 5]])


class ScannerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Scanner

    serial = factory.Sequence(lambda n: f"scanner-{n}")
    floor = factory.SubFactory(FloorFactory)
    x = 2.5
    y = 2.5


class AssetTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AssetType
        django_get_or_create = ("slug",)

    slug = "infusion-pump"
    name = "Infusion pump"


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asset

    name = factory.Sequence(lambda n: f"Pump {n}")
    asset_type = factory.SubFactory(AssetTypeFactory)


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    tag_id = factory.Sequence(lambda n: f"ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:9:{n}")
    asset = factory.SubFactory(AssetFactory)


class SensorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sensor

    serial = factory.Sequence(lambda n: f"fridge-{n}")
    kind = "refrigerator"
    zone = factory.SubFactory(ZoneFactory)
    profile = factory.LazyFunction(
        lambda: ThresholdProfile.objects.get(slug="vaccine-refrigerator")
    )


class AssetLocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tracking.AssetLocation"

    asset = factory.SubFactory(AssetFactory)
    floor = factory.SubFactory(FloorFactory)
    zone = None
    x = 2.0
    y = 3.0
    accuracy_m = 1.5
    estimated_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyAttribute(lambda o: o.estimated_at)
    presence = "present"
    # What the pipeline writes for a well-heard asset: its zone confirmed by this estimate.
    zone_probability = 0.97
    scanners_used = 4
    confirmed_zone = factory.LazyAttribute(lambda o: o.zone)
    confirmed_at = factory.LazyAttribute(lambda o: o.estimated_at if o.zone is not None else None)


class PositionSampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tracking.PositionSample"

    asset = factory.SubFactory(AssetFactory)
    ts = factory.LazyFunction(timezone.now)
    floor = factory.SubFactory(FloorFactory)
    zone = None
    x = 2.0
    y = 3.0
    accuracy_m = 1.5


class ZoneStayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tracking.ZoneStay"

    asset = factory.SubFactory(AssetFactory)
    zone = factory.SubFactory(ZoneFactory)
    entered_at = factory.LazyFunction(timezone.now)
    left_at = None


class ScannerHealthFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tracking.ScannerHealth"

    scanner = factory.SubFactory(ScannerFactory)
    online = True
    agent_version = "1.0.0"
    spool_depth = 0
    last_heartbeat_at = factory.LazyFunction(timezone.now)


class ColdChainSensorFactory(SensorFactory):
    """A monitored fridge with a short expected interval, as the cold-chain tests use."""

    expected_interval_s = 60
    contents = "Vaccines"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "auth.User"
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@hospital.test")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        """UserFactory(roles=["facilities"]) puts the user in those role groups."""
        from django.contrib.auth.models import Group

        for role in extracted or []:
            self.groups.add(Group.objects.get_or_create(name=role)[0])


class EscalationPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "alerts.EscalationPolicy"

    name = factory.Sequence(lambda n: f"Policy {n}")
    repeat_every_min = 10


class EscalationTierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "alerts.EscalationTier"

    policy = factory.SubFactory(EscalationPolicyFactory)
    position = factory.Sequence(lambda n: n)
    after_min = 0
    channels = factory.LazyFunction(lambda: ["log", "email"])
