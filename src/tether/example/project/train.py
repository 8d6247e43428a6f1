"""The example trainer: tether calls train(ctx) and registers what it returns."""

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

CATEGORICAL = ["home_ownership", "purpose"]


def train(ctx):
    encode = ColumnTransformer(
        [("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
          CATEGORICAL)],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    model = Pipeline([
        ("encode", encode),
        ("boost", HistGradientBoostingClassifier(
            max_iter=ctx.params.get("max_iter", 200),
            learning_rate=ctx.params.get("learning_rate", 0.1),
            categorical_features=list(range(len(CATEGORICAL))),
            random_state=ctx.seed,
        )),
    ])
    model.fit(ctx.X, ctx.y, boost__sample_weight=ctx.sample_weight)
    return model
