"""The example trainer: tether calls train(ctx) and registers what it returns."""

from sklearn.ensemble import HistGradientBoostingClassifier


def train(ctx):
    model = HistGradientBoostingClassifier(
        max_iter=ctx.params.get("max_iter", 50),
        random_state=ctx.seed,
    )
    model.fit(ctx.X, ctx.y, sample_weight=ctx.sample_weight)
    return model
