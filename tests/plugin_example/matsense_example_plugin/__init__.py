"""An example matsense plugin: heavy-ball GD, Rademacher measurements, an orthogonal start and
a claim about heavy-ball GD (docs/plugins.md). Nothing in matsense names any of them."""
