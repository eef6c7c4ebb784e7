"""The credentials the emulator tests configure; secrets included, to check none leaks."""

from nami_pipelines.emulators import EmulatorSettings

MPARTICLE_KEY = "feed-ios-key"
MPARTICLE_SECRET = "feed-ios-secret-0d1f"
OTHER_MPARTICLE_KEY = "feed-android-key"
OTHER_MPARTICLE_SECRET = "feed-android-secret-77aa"
AMPLITUDE_KEY = "amplitude-production-key"
OTHER_AMPLITUDE_KEY = "amplitude-staging-key"

SETTINGS = EmulatorSettings(
    mparticle_credentials={
        MPARTICLE_KEY: MPARTICLE_SECRET,
        OTHER_MPARTICLE_KEY: OTHER_MPARTICLE_SECRET,
    },
    amplitude_api_keys=[AMPLITUDE_KEY, OTHER_AMPLITUDE_KEY],
)
