"""The rainfall trainer: tether calls train(ctx) and registers what it returns."""

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def train(ctx):
    model = make_pipeline(StandardScaler(),
                          LogisticRegression(C=ctx.params.get("C", 1.0), max_iter=500))
    model.fit(ctx.X, ctx.y, logisticregression__sample_weight=ctx.sample_weight)
    return model
