"""The streams stage: faust-streaming agents that turn raw events into cases, incidents and alerts."""
