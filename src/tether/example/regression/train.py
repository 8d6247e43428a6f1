"""The example trainer: tether calls train(ctx) and registers what it returns."""

from sklearn.ensemble import HistGradientBoostingRegressor


def train(ctx):
    model = HistGradientBoostingRegressor(
        max_iter=ctx.params.get("max_iter", 100),
        learning_rate=ctx.params.get("learning_rate", 0.05),
        max_depth=3,
        random_state=ctx.seed,
    )
    model.fit(ctx.X, ctx.y, sample_weight=ctx.sample_weight)
    return model
