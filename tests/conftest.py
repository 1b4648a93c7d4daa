"""Test configuration: a modest hypothesis profile so the suite stays fast."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "lrkit",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("lrkit")
# a heavier run on demand: pytest --hypothesis-profile=lrkit-stress
settings.register_profile("lrkit-stress", max_examples=1000, deadline=None)
