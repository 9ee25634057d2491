"""From spec to torch: `check` (shapes, parameter counts, memory and limits, before anything
is allocated), `build` (the `Network` module, with per-layer captures for the stream) and
`init` (the weight initializers). The layer types themselves live in server/spec/layers/."""
