//! Micro-benchmarks of the pure rules engine (no I/O): Apply's pricing of a 100-line cart with 5
//! stacked coupons, ListApplicable's evaluation and ranking of 1 000 coupons, and the generation
//! of 100 000 campaign codes. `cargo bench --bench engine`.

use std::hint::black_box;

use coupon_service::domain::{
    campaign::CodePattern,
    cart::{Checkout, CheckoutInput, LineInput},
    coupon::{Conditions, Coupon, CouponRules, DiscountRule, Limits, Stacking, Target, Usage},
    engine::{self, Candidate, LedgerView},
    Code, Currency, Timestamp, Violations,
};
use criterion::{criterion_group, criterion_main, Criterion};
use rand::{rngs::StdRng, SeedableRng};

fn coupon(code: &str, discount: DiscountRule) -> Coupon {
    Coupon {
        id: format!("cpn_{code}"),
        code: Code::parse(code).expect("a valid code"),
        campaign_id: None,
        active: true,
        automatic: false,
        rules: CouponRules {
            description: String::new(),
            currency: Some(Currency::parse("INR").expect("INR")),
            discount,
            target: Target::default(),
            conditions: Conditions::default(),
            limits: Limits::default(),
            stacking: Stacking::default(),
        },
        usage: Usage::default(),
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
    }
}

fn checkout(lines: usize) -> Checkout {
    Checkout::parse(
        CheckoutInput {
            currency: "INR".into(),
            lines: (0..lines)
                .map(|i| LineInput {
                    line_id: format!("l{i}"),
                    product_id: format!("prod-{i}"),
                    categories: vec![if i % 2 == 0 { "shirts" } else { "shoes" }.into()],
                    unit_price: Some(10_000 + 137 * i as i64),
                    quantity: 1 + (i % 3) as i64,
                    ..Default::default()
                })
                .collect(),
            shipping: 4_000,
            ..Default::default()
        },
        "checkout",
    )
    .expect("a valid checkout")
}

/// Five stackable coupons of different kinds and priorities.
fn stacked() -> Vec<Candidate> {
    let rules = [
        DiscountRule::Percentage {
            basis_points: 1_000,
            max_discount: Some(500_000),
        },
        DiscountRule::FixedAmount { amount: 20_000 },
        DiscountRule::BuyGet {
            buy: 2,
            get: 1,
            max_applications: 5,
        },
        DiscountRule::FreeShipping { max_discount: None },
        DiscountRule::Percentage {
            basis_points: 500,
            max_discount: None,
        },
    ];
    rules
        .into_iter()
        .enumerate()
        .map(|(i, rule)| {
            let mut c = coupon(&format!("STACK-{i}"), rule);
            c.rules.stacking.stackable = true;
            c.rules.stacking.priority = 5 - i as i32;
            if i == 2 {
                c.rules.target.categories = vec!["shirts".into()];
            }
            Candidate {
                code: c.code.clone(),
                coupon: Some(c),
                ledger: LedgerView::default(),
            }
        })
        .collect()
}

/// A catalogue like the load suite's: some apply, some miss a minimum, some target elsewhere.
fn catalogue(count: usize) -> Vec<(Coupon, LedgerView)> {
    (0..count)
        .map(|i| {
            let mut c = coupon(
                &format!("LIST-{i:04}"),
                DiscountRule::FixedAmount {
                    amount: 100 + (i as i64 % 50) * 10,
                },
            );
            c.rules.conditions.min_subtotal = (i as i64 % 8) * 20_000;
            match i % 4 {
                0 => c.rules.conditions.channels = vec!["app".into()],
                1 => c.rules.target.categories = vec!["shirts".into()],
                _ => {}
            }
            (c, LedgerView::default())
        })
        .collect()
}

fn engine_benchmarks(criterion: &mut Criterion) {
    let now = Timestamp(1_800_000_000_000_000);

    let cart = checkout(100);
    let candidates = stacked();
    criterion.bench_function("apply: 100 lines, 5 stacked coupons", |b| {
        b.iter(|| engine::price(black_box(&cart), candidates.clone(), now))
    });

    let cart = checkout(5);
    let coupons = catalogue(1_000);
    criterion.bench_function("list-applicable: evaluate and rank 1 000 coupons", |b| {
        b.iter(|| {
            let mut applicable: Vec<(i64, &Coupon)> = coupons
                .iter()
                .filter_map(|(coupon, ledger)| {
                    let evaluation = engine::evaluate(coupon, ledger, black_box(&cart), now);
                    evaluation
                        .is_valid()
                        .then(|| (evaluation.benefit.total(), coupon))
                })
                .collect();
            applicable.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.code.cmp(&b.1.code)));
            applicable.len()
        })
    });

    let mut violations = Violations::new();
    let pattern = CodePattern::parse("SUMMER-", 10, "", &mut violations);
    criterion.bench_function("generate 100 000 codes", |b| {
        b.iter(|| {
            let mut rng = StdRng::seed_from_u64(7);
            let mut codes = std::collections::HashSet::with_capacity(100_000);
            while codes.len() < 100_000 {
                if let Some(code) = pattern.generate(&mut rng) {
                    codes.insert(code);
                }
            }
            codes.len()
        })
    });
}

criterion_group! {
    name = benches;
    // Few samples: the suite must fit a shared 2-core machine.
    config = Criterion::default().sample_size(10);
    targets = engine_benchmarks
}
criterion_main!(benches);
