"""What the asset page says about an integration, written from its configuration."""

from nami_pipelines.config import parse_integrations
from nami_pipelines.defs.delivery.descriptions import delivery_description


def test_a_disabled_all_platforms_feed_behind_a_proxy_says_so():
    (feed,) = parse_integrations(
        {
            "integrations": [
                {
                    "name": "legacy_feed",
                    "type": "mparticle",
                    "enabled": False,
                    "app_id": "app-1",
                    "platform": "all",
                    "base_url": "https://proxy.example.com/mp/v2",
                    "credentials": {"key_env": "K", "secret_env": "S"},
                    "customer_id": "nami_user_id",
                    "events": ["user.subscription.renewed", "device.transaction"],
                    "sandbox": "drop",
                }
            ]
        },
        check_env=False,
    )
    assert delivery_description(feed).splitlines() == [
        "**Disabled** in the integrations file: a run sends nothing.",
        "",
        "Sends the day's events of app `app-1` to the mParticle input feed at "
        "https://proxy.example.com/mp, every platform (legacy all-platforms feed), customer id "
        "`nami_user_id`, then the touched users' current `namiml_*` attributes.",
        "",
        "- events: `user.subscription.renewed`, `device.transaction`",
        "- sandbox events: dropped",
        "",
        "Re-materializing a day is safe: the ledger skips what was accepted (docs/delivery.md).",
    ]
