"""A dataset of your own: three CSV files with feature columns and a label column."""

import pandas as pd
import torch
from torch.utils.data import TensorDataset


class WineCSV:
    """Reads data/{train,dev,test}.csv; standardises features with the training statistics."""

    task = "classification"

    def __init__(self, folder="data", label="cultivar"):
        frames = {split: pd.read_csv(f"{folder}/{split}.csv") for split in ("train", "dev", "test")}
        self.feature_names = [c for c in frames["train"].columns if c != label]
        self.class_names = sorted(frames["train"][label].unique().tolist())
        train = torch.tensor(frames["train"][self.feature_names].to_numpy(), dtype=torch.float32)
        self.feature_mean, self.feature_std = train.mean(0), train.std(0)
        for split, frame in frames.items():
            x = torch.tensor(frame[self.feature_names].to_numpy(), dtype=torch.float32)
            y = torch.tensor([self.class_names.index(v) for v in frame[label]])
            setattr(self, split, TensorDataset((x - self.feature_mean) / self.feature_std, y))
        self.input_shape = (len(self.feature_names),)
        self.output_dim = len(self.class_names)
