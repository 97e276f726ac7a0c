//! The cash ledger and position book: money in integer cents, so that
//! realized plus unrealized P&L equals the change in equity to the cent.
//!
//! Every fill posts two things: a cash movement (premium in or out, and the
//! commission) and a change of cost basis in the position book. Cost basis
//! is kept as total [`Money`] per position, not as an average price, and a
//! partial close removes a rounded share of it and keeps the rest, so the
//! sum of bases is conserved exactly.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Contract, DomainError, Fill, Money, Price, Side};

/// Why cash moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerEntryKind {
    Deposit,
    Withdrawal,
    /// Proceeds of a sale (premium received, stock sold).
    SaleProceeds,
    /// Cost of a purchase (buy to close, stock bought).
    PurchaseCost,
    Commission,
    /// Stock bought at the strike on assignment.
    Assignment,
    Interest,
}

impl LedgerEntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerEntryKind::Deposit => "deposit",
            LedgerEntryKind::Withdrawal => "withdrawal",
            LedgerEntryKind::SaleProceeds => "sale_proceeds",
            LedgerEntryKind::PurchaseCost => "purchase_cost",
            LedgerEntryKind::Commission => "commission",
            LedgerEntryKind::Assignment => "assignment",
            LedgerEntryKind::Interest => "interest",
        }
    }
}

/// One cash movement. `amount` is signed: positive adds cash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub time: DateTime<Utc>,
    pub kind: LedgerEntryKind,
    pub amount: Money,
    /// What caused it: an execution id, a trade id.
    pub reference: String,
}

/// A position in the book: signed quantity and total cost basis (the cash
/// paid for it, negative for a short that brought cash in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookPosition {
    pub contract: Contract,
    pub quantity: i64,
    pub cost_basis: Money,
}

/// Cash, positions and realized P&L of one account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    entries: Vec<LedgerEntry>,
    positions: BTreeMap<String, BookPosition>,
    realized: Money,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }

    /// The sum of all entries.
    pub fn cash(&self) -> Money {
        self.entries.iter().map(|e| e.amount).sum()
    }

    pub fn realized_pnl(&self) -> Money {
        self.realized
    }

    pub fn positions(&self) -> impl Iterator<Item = &BookPosition> {
        self.positions.values()
    }

    pub fn deposit(&mut self, time: DateTime<Utc>, amount: Money, reference: &str) {
        self.entries.push(LedgerEntry {
            time,
            kind: if amount.is_negative() {
                LedgerEntryKind::Withdrawal
            } else {
                LedgerEntryKind::Deposit
            },
            amount,
            reference: reference.into(),
        });
    }

    /// Posts a fill: its cash and commission, and the position change. A
    /// fill that reduces a position realizes P&L on the share of cost basis
    /// it removes; commissions are realized at once.
    pub fn post_fill(&mut self, fill: &Fill) -> Result<(), DomainError> {
        if fill.quantity <= 0 {
            return Err(DomainError::Invalid(format!(
                "fill {}: quantity must be positive, got {}",
                fill.exec_id, fill.quantity
            )));
        }
        let gross = fill
            .price
            .notional(fill.quantity, fill.contract.multiplier());
        let (kind, cash) = match fill.side {
            Side::Sell => (LedgerEntryKind::SaleProceeds, gross),
            Side::Buy => (LedgerEntryKind::PurchaseCost, -gross),
        };
        self.entries.push(LedgerEntry {
            time: fill.time,
            kind,
            amount: cash,
            reference: fill.exec_id.clone(),
        });
        if fill.commission != Money::ZERO {
            self.entries.push(LedgerEntry {
                time: fill.time,
                kind: LedgerEntryKind::Commission,
                amount: -fill.commission,
                reference: fill.exec_id.clone(),
            });
            self.realized -= fill.commission;
        }
        // The cost of a signed quantity change is minus the cash it moved.
        let delta_qty = fill.side.sign() * fill.quantity;
        self.apply_position_change(&fill.contract, delta_qty, -cash);
        Ok(())
    }

    fn apply_position_change(&mut self, contract: &Contract, delta_qty: i64, delta_cost: Money) {
        let key = contract.key();
        let pos = self
            .positions
            .entry(key.clone())
            .or_insert_with(|| BookPosition {
                contract: contract.clone(),
                quantity: 0,
                cost_basis: Money::ZERO,
            });
        let same_direction = pos.quantity == 0 || pos.quantity.signum() == delta_qty.signum();
        if same_direction {
            pos.quantity += delta_qty;
            pos.cost_basis += delta_cost;
        } else {
            let closing = delta_qty.abs().min(pos.quantity.abs());
            // Share of basis removed, rounded toward zero; the remainder stays.
            let removed = Money::from_cents(
                i64::try_from(
                    i128::from(pos.cost_basis.cents()) * i128::from(closing)
                        / i128::from(pos.quantity.abs()),
                )
                .unwrap_or(0),
            );
            let closing_cost = Money::from_cents(
                i64::try_from(
                    i128::from(delta_cost.cents()) * i128::from(closing)
                        / i128::from(delta_qty.abs()),
                )
                .unwrap_or(0),
            );
            // Realized = value taken out − basis removed. For a short put
            // bought back: basis −premium, closing cost +price paid.
            self.realized += -(removed + closing_cost);
            pos.cost_basis -= removed;
            pos.quantity += delta_qty.signum() * closing;
            let opening_qty = delta_qty.abs() - closing;
            let opening_cost = delta_cost - closing_cost;
            if opening_qty > 0 {
                // Flipped through zero: the rest opens a new position.
                pos.quantity += delta_qty.signum() * opening_qty;
                pos.cost_basis += opening_cost;
            } else {
                // Rounding left-over of the closing cost stays realized.
                self.realized -= opening_cost;
            }
        }
        if pos.quantity == 0 {
            // Any basis left on a flat position is realized.
            self.realized -= pos.cost_basis;
            self.positions.remove(&key);
        }
    }

    /// Market value of all positions at the given marks (contract key →
    /// price); a position without a mark is valued at its cost basis.
    pub fn market_value(&self, marks: &BTreeMap<String, Price>) -> Money {
        self.positions
            .values()
            .map(|p| match marks.get(&p.contract.key()) {
                Some(price) => price.notional(p.quantity, p.contract.multiplier()),
                None => p.cost_basis,
            })
            .sum()
    }

    /// Market value minus cost basis.
    pub fn unrealized_pnl(&self, marks: &BTreeMap<String, Price>) -> Money {
        let basis: Money = self.positions.values().map(|p| p.cost_basis).sum();
        self.market_value(marks) - basis
    }

    /// Cash plus market value.
    pub fn equity(&self, marks: &BTreeMap<String, Price>) -> Money {
        self.cash() + self.market_value(marks)
    }

    /// Net deposits (deposits minus withdrawals).
    pub fn net_deposits(&self) -> Money {
        self.entries
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    LedgerEntryKind::Deposit | LedgerEntryKind::Withdrawal
                )
            })
            .map(|e| e.amount)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OptionContract, Right, Symbol};
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn put(strike_dollars: i64) -> Contract {
        Contract::Option(OptionContract::us(
            Symbol::new("KO").unwrap(),
            Right::Put,
            Price::from_cents(strike_dollars * 100),
            NaiveDate::from_ymd_opt(2024, 1, 19).unwrap(),
        ))
    }

    fn fill(n: usize, contract: Contract, side: Side, qty: i64, raw: i64, comm: i64) -> Fill {
        Fill {
            exec_id: format!("e{n}"),
            order_ref: format!("o{n}"),
            contract,
            side,
            quantity: qty,
            price: Price::from_raw(raw),
            commission: Money::from_cents(comm),
            time: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn test_short_put_round_trip_realizes_premium_less_costs() {
        let mut l = Ledger::new();
        l.deposit(
            DateTime::<Utc>::UNIX_EPOCH,
            Money::from_dollars(100_000),
            "seed",
        );
        l.post_fill(&fill(1, put(50), Side::Sell, 5, 4_000, 325))
            .unwrap();
        l.post_fill(&fill(2, put(50), Side::Buy, 5, 2_000, 325))
            .unwrap();
        // $200 premium − $100 to close − $6.50 commissions
        assert_eq!(l.realized_pnl(), Money::from_cents(9_350));
        assert_eq!(
            l.cash(),
            Money::from_dollars(100_000) + Money::from_cents(9_350)
        );
        assert_eq!(l.positions().count(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// The ledger balances to the cent: for any sequence of fills (with
        /// partial closes, flips and odd prices) and any marks,
        /// realized + unrealized P&L = equity − net deposits, exactly.
        #[test]
        fn ledger_balances_to_the_cent(
            steps in proptest::collection::vec(
                (0usize..3, any::<bool>(), 1i64..7, 1i64..200_000, 0i64..500),
                1..60,
            ),
            marks in proptest::collection::vec(0i64..300_000, 3),
        ) {
            let contracts = [put(40), put(45), put(50)];
            let mut l = Ledger::new();
            l.deposit(DateTime::<Utc>::UNIX_EPOCH, Money::from_dollars(50_000), "seed");
            for (n, (c, sell, qty, raw, comm)) in steps.into_iter().enumerate() {
                let side = if sell { Side::Sell } else { Side::Buy };
                l.post_fill(&fill(n, contracts[c].clone(), side, qty, raw, comm)).unwrap();
            }
            let marks: BTreeMap<String, Price> = contracts
                .iter()
                .zip(marks)
                .map(|(c, m)| (c.key(), Price::from_raw(m)))
                .collect();
            let pnl = l.realized_pnl() + l.unrealized_pnl(&marks);
            prop_assert_eq!(pnl, l.equity(&marks) - l.net_deposits());
        }
    }
}
