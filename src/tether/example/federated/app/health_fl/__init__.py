"""The health-risk Flower app: a ServerApp (FedAvg) and a ClientApp (one per hospital)."""
