import torch
from torch.utils.data import Dataset, TensorDataset

from sweeptrainer.training.batch_source import BatchSource, epoch_order


def test_epoch_order_is_a_function_of_seed_and_epoch():
    assert torch.equal(epoch_order(50, 1, 3), epoch_order(50, 1, 3))
    assert not torch.equal(epoch_order(50, 1, 3), epoch_order(50, 1, 4))
    assert not torch.equal(epoch_order(50, 1, 3), epoch_order(50, 2, 3))
    assert sorted(epoch_order(50, 1, 3).tolist()) == list(range(50))


class _ListDataset(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_resuming_mid_epoch_gives_the_remaining_batches():
    x, y = torch.arange(23).float().unsqueeze(1), torch.arange(23)
    order = epoch_order(23, 5, 0)
    for dataset in (TensorDataset(x, y), _ListDataset(x, y)):
        source = BatchSource(dataset, 5, torch.device("cpu"))
        assert source.num_batches == 5
        full = [b[1].tolist() for b in source.batches(order)]
        assert [b[1].tolist() for b in source.batches(order, start=3)] == full[3:]
        assert [i for batch in full for i in batch] == order.tolist()
