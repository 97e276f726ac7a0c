//! Pareto ranks over three objectives: mean ROI (higher is better), max
//! drawdown (lower is better) and win rate (higher is better).

use std::borrow::Borrow;

use super::evaluation::Evaluation;

/// Whether `a` dominates `b`: at least as good on mean ROI, max drawdown
/// and win rate, and strictly better on at least one. Equal points do not
/// dominate each other.
pub fn dominates(a: &Evaluation, b: &Evaluation) -> bool {
    let no_worse =
        a.roi_mean >= b.roi_mean && a.max_drawdown <= b.max_drawdown && a.win_rate >= b.win_rate;
    let better =
        a.roi_mean > b.roi_mean || a.max_drawdown < b.max_drawdown || a.win_rate > b.win_rate;
    no_worse && better
}

/// The Pareto rank of every evaluation, in input order: 1 for the
/// non-dominated front, 2 for the front once rank 1 is removed, and so on
/// (Deb's fast non-dominated sort, O(n²)).
pub fn pareto_ranks<E: Borrow<Evaluation>>(evaluations: &[E]) -> Vec<usize> {
    let n = evaluations.len();
    // dominated_by[i]: how many points dominate i; dominates_list[i]: whom i dominates.
    let mut dominated_by = vec![0usize; n];
    let mut dominated: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in (i + 1)..n {
            let (a, b) = (evaluations[i].borrow(), evaluations[j].borrow());
            if dominates(a, b) {
                dominated[i].push(j);
                dominated_by[j] += 1;
            } else if dominates(b, a) {
                dominated[j].push(i);
                dominated_by[i] += 1;
            }
        }
    }
    let mut ranks = vec![0usize; n];
    let mut front: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    let mut rank = 1;
    while !front.is_empty() {
        let mut next = Vec::new();
        for &i in &front {
            ranks[i] = rank;
            for &j in &dominated[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        next.sort_unstable();
        front = next;
        rank += 1;
    }
    ranks
}

/// Indices (in input order) of the non-dominated evaluations.
pub fn pareto_front<E: Borrow<Evaluation>>(evaluations: &[E]) -> Vec<usize> {
    pareto_ranks(evaluations)
        .into_iter()
        .enumerate()
        .filter_map(|(i, rank)| (rank == 1).then_some(i))
        .collect()
}
