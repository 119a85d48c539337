from sweeptrainer.training.budget import Budget


def test_eval_points_every_n_and_at_the_end():
    budget = Budget("epoch", total=20, eval_every=3, save_every=3)
    points, it = [], 0
    while not budget.done(it):
        it = budget.next_eval(it)
        points.append(it)
    assert points == [3, 6, 9, 12, 15, 18, 20]


def test_step_budget_matches_issue_example():
    budget = Budget("step", total=300, eval_every=50, save_every=50)
    assert budget.per_step
    assert [budget.next_eval(i) for i in (0, 49, 50, 299)] == [50, 50, 100, 300]


def test_save_points():
    budget = Budget("epoch", total=7, eval_every=1, save_every=3)
    assert [i for i in range(1, 8) if budget.is_save_point(i)] == [3, 6, 7]
