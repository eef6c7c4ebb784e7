"""nami_pipelines: Nami ML subscription and paywall events to mParticle and Amplitude."""
