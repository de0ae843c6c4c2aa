"""Result-pane views: one module per console tree node, each a ResultView with its model."""
