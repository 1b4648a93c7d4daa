"""Test configuration: hypothesis profiles.

The default profile is modest and *derandomized*: every run (CI included) tries the same
examples, so a red run is reproducible and never a coin flip. Explore new examples with
``pytest --hypothesis-profile=lrkit-explore`` (random, 200 examples) or ``lrkit-stress``.
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "lrkit",
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "lrkit-explore", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("lrkit-stress", max_examples=1000, deadline=None)
settings.load_profile("lrkit")
