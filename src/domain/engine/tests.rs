use proptest::prelude::*;

use super::*;
use crate::domain::{
    cart::{CheckoutInput, CustomerHistory, LineInput},
    coupon::{
        Conditions, CouponRules, CustomerSegment, Limits, Stacking, Target, Tier, TierBasis,
        TierReward,
    },
    money::mul_bps,
    Currency,
};

const NOW: Timestamp = Timestamp(1_800_000_000_000_000);

fn coupon(code: &str, discount: DiscountRule) -> Coupon {
    Coupon {
        id: format!("cpn_{code}"),
        code: Code::parse(code).unwrap(),
        campaign_id: None,
        active: true,
        automatic: false,
        rules: CouponRules {
            description: String::new(),
            currency: Some(Currency::parse("INR").unwrap()),
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

fn line(product: &str, price: i64, quantity: i64) -> LineInput {
    LineInput {
        product_id: product.into(),
        unit_price: Some(price),
        quantity,
        ..Default::default()
    }
}

fn checkout(lines: Vec<LineInput>) -> Checkout {
    Checkout::parse(
        CheckoutInput {
            currency: "INR".into(),
            lines,
            ..Default::default()
        },
        "checkout",
    )
    .unwrap()
}

fn candidates(coupons: &[Coupon]) -> Vec<Candidate> {
    coupons
        .iter()
        .map(|c| Candidate {
            code: c.code.clone(),
            coupon: Some(c.clone()),
            ledger: LedgerView::default(),
        })
        .collect()
}

fn save200() -> Coupon {
    let mut save = coupon("SAVE200", DiscountRule::FixedAmount { amount: 20_000 });
    save.rules.conditions.min_subtotal = 149_900;
    save
}

#[test]
fn reproduces_the_cart_apis_example() {
    // 2 x 799 = 1598, SAVE200 gives 200, total 1398, with the 200 on the line.
    let priced = price(
        &checkout(vec![line("12345", 79_900, 2)]),
        candidates(&[save200()]),
        NOW,
    );
    assert_eq!(priced.subtotal, 159_800);
    assert_eq!(priced.item_discount, 20_000);
    assert_eq!(priced.total, 139_800);
    assert_eq!(priced.lines[0].coupon_discount, 20_000);
    assert_eq!(priced.applied.len(), 1);
}

#[test]
fn reports_every_failing_reason_with_the_missing_amount() {
    let mut save = save200();
    save.active = false;
    save.rules.conditions.ends_at = Some(Timestamp(NOW.0 - 1));
    let evaluation = evaluate(
        &save,
        &LedgerView::default(),
        &checkout(vec![line("p", 100_000, 1)]),
        NOW,
    );
    let codes: Vec<&str> = evaluation.reasons.iter().map(Reason::code).collect();
    assert_eq!(
        codes,
        ["COUPON_INACTIVE", "COUPON_EXPIRED", "BELOW_MINIMUM_AMOUNT"]
    );
    assert!(matches!(
        evaluation.reasons[2],
        Reason::BelowMinimumAmount {
            missing: 49_900,
            ..
        }
    ));
}

#[test]
fn percentage_is_capped_and_rounded_half_up() {
    let first20 = coupon(
        "FIRST20",
        DiscountRule::Percentage {
            basis_points: 2_000,
            max_discount: Some(50_000),
        },
    );
    let small = price(
        &checkout(vec![line("a", 79_900, 2)]),
        candidates(std::slice::from_ref(&first20)),
        NOW,
    );
    assert_eq!(small.item_discount, 31_960);
    let big = price(
        &checkout(vec![line("a", 500_000, 2)]),
        candidates(&[first20]),
        NOW,
    );
    assert_eq!(big.item_discount, 50_000, "capped");
    let third = coupon(
        "THIRD",
        DiscountRule::Percentage {
            basis_points: 3_333,
            max_discount: None,
        },
    );
    // 3 lines of 1: 33.33% of 3 = 0.9999 -> 1 (half-up), on the first line.
    let priced = price(
        &checkout(vec![line("a", 1, 1), line("b", 1, 1), line("c", 1, 1)]),
        candidates(&[third]),
        NOW,
    );
    assert_eq!(priced.item_discount, 1);
    assert_eq!(
        priced
            .lines
            .iter()
            .map(|l| l.coupon_discount)
            .collect::<Vec<_>>(),
        [1, 0, 0]
    );
}

#[test]
fn buy_two_get_one_frees_the_cheapest_units() {
    let b2g1 = coupon(
        "B2G1",
        DiscountRule::BuyGet {
            buy: 2,
            get: 1,
            max_applications: 0,
        },
    );
    let priced = price(
        &checkout(vec![
            line("shirt", 1_000, 2),
            line("socks", 300, 2),
            line("cap", 500, 2),
        ]),
        candidates(std::slice::from_ref(&b2g1)),
        NOW,
    );
    // 6 units -> 2 groups -> the 2 cheapest units (socks) are free.
    assert_eq!(priced.lines[1].free_units, 2);
    assert_eq!(priced.item_discount, 600);
    let short = evaluate(
        &b2g1,
        &LedgerView::default(),
        &checkout(vec![line("shirt", 1_000, 2)]),
        NOW,
    );
    assert_eq!(
        short.reasons,
        vec![Reason::BelowMinimumQuantity {
            minimum: 3,
            missing: 1
        }]
    );
}

#[test]
fn exclusive_price_and_free_shipping() {
    let mut cheap = coupon("FLAT99", DiscountRule::ExclusivePrice { unit_price: 9_900 });
    cheap.rules.target.categories = vec!["tees".into()];
    let mut tee = line("tee", 49_900, 2);
    tee.categories = vec!["tees".into()];
    let mut input = CheckoutInput {
        currency: "INR".into(),
        lines: vec![tee, line("mug", 20_000, 1)],
        shipping: 4_900,
        ..Default::default()
    };
    input.customer.history = CustomerHistory::New;
    let checkout = Checkout::parse(input, "checkout").unwrap();
    let mut free = coupon("FREEDEL", DiscountRule::FreeShipping { max_discount: None });
    free.rules.stacking.stackable = true;
    cheap.rules.stacking.stackable = true;
    let priced = price(&checkout, candidates(&[cheap, free]), NOW);
    assert_eq!(priced.lines[0].coupon_discount, 80_000);
    assert_eq!(priced.lines[1].coupon_discount, 0, "not in the category");
    assert!(priced.exclusive_price);
    assert!(priced.free_delivery);
    assert_eq!(priced.shipping_discount, 4_900);
    assert_eq!(priced.total, 99_800 + 20_000 - 80_000);
}

#[test]
fn an_exclusive_coupon_applies_alone_and_others_are_refused() {
    let mut high = coupon("HIGH", DiscountRule::FixedAmount { amount: 100 });
    high.rules.stacking.priority = 10;
    let mut stack = coupon("STACK", DiscountRule::FixedAmount { amount: 50 });
    stack.rules.stacking.stackable = true;
    let priced = price(
        &checkout(vec![line("a", 1_000, 1)]),
        candidates(&[stack, high]),
        NOW,
    );
    assert_eq!(priced.applied.len(), 1);
    assert_eq!(priced.applied[0].coupon.code.as_str(), "HIGH");
    assert_eq!(
        priced.rejected[0].reasons,
        vec![Reason::NotCombinable {
            with: Code::parse("HIGH").unwrap()
        }]
    );
}

#[test]
fn stacked_coupons_apply_on_what_remains() {
    let mut fixed = coupon("A10", DiscountRule::FixedAmount { amount: 900 });
    fixed.rules.stacking = Stacking {
        stackable: true,
        priority: 5,
        ..Stacking::default()
    };
    let mut half = coupon(
        "B50",
        DiscountRule::Percentage {
            basis_points: 5_000,
            max_discount: None,
        },
    );
    half.rules.stacking.stackable = true;
    let priced = price(
        &checkout(vec![line("a", 1_000, 1)]),
        candidates(&[half, fixed]),
        NOW,
    );
    // A10 first (priority 5): 900 off 1000; then 50% of the remaining 100.
    assert_eq!(priced.item_discount, 950);
    assert_eq!(priced.total, 50);
}

#[test]
fn replacing_item_promotions_prices_from_original_prices() {
    let mut promo = coupon(
        "PROMO",
        DiscountRule::Percentage {
            basis_points: 1_000,
            max_discount: None,
        },
    );
    promo.rules.stacking.replaces_item_promotions = true;
    promo.rules.stacking.removed_promotions_hint = "Item discounts are removed".into();
    let mut discounted = line("a", 8_000, 1);
    discounted.original_unit_price = 10_000;
    let priced = price(&checkout(vec![discounted]), candidates(&[promo]), NOW);
    assert!(priced.promotions_removed);
    assert_eq!(priced.subtotal, 10_000);
    assert_eq!(priced.item_discount, 1_000);
    assert_eq!(priced.removed_promotions_hint, "Item discounts are removed");
}

#[test]
fn limits_and_budget_refuse_or_cap() {
    let mut limited = save200();
    limited.rules.limits = Limits {
        max_redemptions: Some(5),
        max_redemptions_per_customer: Some(1),
        budget: Some(30_000),
    };
    limited.usage = Usage {
        redemptions: 5,
        budget_used: 30_000,
    };
    let ledger = LedgerView {
        usage: limited.usage,
        customer_redemptions: 1,
        customer_returning: Some(true),
    };
    let evaluation = evaluate(
        &limited,
        &ledger,
        &checkout(vec![line("a", 200_000, 1)]),
        NOW,
    );
    let codes: Vec<&str> = evaluation.reasons.iter().map(Reason::code).collect();
    assert_eq!(
        codes,
        [
            "USAGE_LIMIT_REACHED",
            "CUSTOMER_LIMIT_REACHED",
            "BUDGET_EXHAUSTED"
        ]
    );

    limited.usage = Usage {
        redemptions: 1,
        budget_used: 25_000,
    };
    let capped = evaluate(
        &limited,
        &LedgerView {
            usage: limited.usage,
            ..LedgerView::default()
        },
        &checkout(vec![line("a", 200_000, 1)]),
        NOW,
    );
    assert!(capped.is_valid());
    assert_eq!(
        capped.benefit.total(),
        5_000,
        "only what is left of the budget"
    );
}

#[test]
fn customer_segments_follow_the_caller_then_the_ledger() {
    let mut first = save200();
    first.rules.conditions.min_subtotal = 0;
    first.rules.conditions.customer_segment = CustomerSegment::New;
    let guest = checkout(vec![line("a", 1_000, 1)]);
    let mut cart = guest.clone();
    cart.customer.id = "cust-1".into();
    let returning = LedgerView {
        customer_returning: Some(true),
        ..LedgerView::default()
    };
    assert_eq!(
        evaluate(&first, &returning, &cart, NOW).reasons,
        vec![Reason::CustomerNotEligible {
            segment: CustomerSegment::New
        }]
    );
    let mut told_new = cart.clone();
    told_new.customer.history = CustomerHistory::New;
    assert!(
        evaluate(&first, &returning, &told_new, NOW).is_valid(),
        "the caller's word wins"
    );
    let unknown = LedgerView::default();
    assert!(
        !evaluate(&first, &unknown, &cart, NOW).is_valid(),
        "an unknown customer is not new"
    );
    assert_eq!(
        evaluate(&first, &unknown, &guest, NOW).reasons,
        vec![Reason::SignInRequired {
            segment: CustomerSegment::New
        }],
        "a guest is told to sign in, not that the coupon is for new customers"
    );
}

#[test]
fn the_tenant_policy_comes_first_and_a_shared_rule_is_reported_once() {
    let mut own = coupon("OWN", DiscountRule::FixedAmount { amount: 100 });
    own.rules.conditions.exclusive_of_loyalty_points = true;
    own.rules.conditions.channels = vec!["app".into()];
    let mut cart = checkout(vec![line("a", 1_000, 1)]);
    cart.loyalty_points_used = 10;
    cart.order_type = "Fundraising".into();
    let cart = cart.under_policy(crate::domain::policy::TenantPolicy {
        refuse_loyalty_points: true,
        excluded_order_types: vec!["fundraising".into()],
        default_channel: "app".into(),
        ..Default::default()
    });
    assert_eq!(
        cart.channel, "app",
        "the default channel fills a missing one"
    );
    assert_eq!(
        evaluate(&own, &LedgerView::default(), &cart, NOW).reasons,
        vec![
            Reason::OrderTypeNotEligible {
                order_type: "Fundraising".into()
            },
            Reason::NotCombinableWithPoints,
        ]
    );
}

#[test]
fn a_coupon_for_other_payment_links_is_only_not_found() {
    let mut linked = coupon("LINKED", DiscountRule::FixedAmount { amount: 100 });
    linked.rules.conditions.payment_link_ids = vec!["pl-1".into()];
    linked.rules.conditions.min_subtotal = 1_000_000;
    let mut cart = checkout(vec![line("a", 1_000, 1)]);
    let ledger = LedgerView::default();
    assert_eq!(
        evaluate(&linked, &ledger, &cart, NOW).reasons,
        vec![Reason::CouponNotFound],
        "no other reason reveals the coupon"
    );
    cart.payment_link_id = "pl-1".into();
    assert_eq!(
        evaluate(&linked, &ledger, &cart, NOW)
            .reasons
            .iter()
            .map(Reason::code)
            .collect::<Vec<_>>(),
        ["BELOW_MINIMUM_AMOUNT"]
    );
}

#[test]
fn metadata_prefix_reaches_keys_that_built_in_fields_hide() {
    let cart_qty = |field: &str| crate::domain::coupon::Predicate {
        field: field.into(),
        operator: crate::domain::coupon::PredicateOperator::Gt,
        values: vec!["10".into()],
    };
    let mut cart = checkout(vec![line("a", 1_000, 3)]);
    cart.cart.metadata.insert("cart_qty".into(), "11".into());
    let mut by_metadata = coupon("META", DiscountRule::FixedAmount { amount: 100 });
    by_metadata.rules.conditions.order_predicates = vec![cart_qty("metadata.cart_qty")];
    let mut by_units = coupon("UNITS", DiscountRule::FixedAmount { amount: 100 });
    by_units.rules.conditions.order_predicates = vec![cart_qty("cart_qty")];
    let ledger = LedgerView::default();
    assert!(evaluate(&by_metadata, &ledger, &cart, NOW).is_valid());
    assert!(!evaluate(&by_units, &ledger, &cart, NOW).is_valid());
}

// === tiered discounts ===

fn tiered(code: &str, basis: TierBasis, tiers: &[(i64, TierReward)]) -> Coupon {
    coupon(
        code,
        DiscountRule::Tiered {
            basis,
            tiers: tiers
                .iter()
                .map(|&(threshold, reward)| Tier { threshold, reward })
                .collect(),
        },
    )
}

fn percent(basis_points: u32) -> TierReward {
    TierReward::Percentage { basis_points }
}

/// 5% from 1,000, 10% from 2,500, 15% from 5,000 (the example).
fn spend_ladder() -> Coupon {
    tiered(
        "LADDER",
        TierBasis::Spend,
        &[
            (100_000, percent(500)),
            (250_000, percent(1_000)),
            (500_000, percent(1_500)),
        ],
    )
}

#[test]
fn spend_tiers_apply_the_best_reached_at_every_threshold() {
    let ladder = spend_ladder();
    let thresholds = [100_000, 250_000, 500_000];
    let rates = [500, 1_000, 1_500];
    for (index, threshold) in thresholds.into_iter().enumerate() {
        for spend in [threshold - 1, threshold, threshold + 1] {
            let evaluation = evaluate(
                &ladder,
                &LedgerView::default(),
                &checkout(vec![line("p", spend, 1)]),
                NOW,
            );
            // The tier reached: this one from its threshold on, the one below just under it.
            let reached = if spend >= threshold {
                Some(index)
            } else {
                index.checked_sub(1)
            };
            match reached {
                None => {
                    assert_eq!(
                        evaluation.reasons,
                        [Reason::BelowMinimumAmount {
                            minimum: 100_000,
                            missing: 1,
                            currency: Currency::parse("INR").unwrap(),
                        }]
                    );
                    assert_eq!(evaluation.benefit.total(), 0);
                }
                Some(tier) => {
                    assert!(evaluation.is_valid(), "{spend}: {:?}", evaluation.reasons);
                    assert_eq!(
                        evaluation.benefit.total(),
                        mul_bps(spend, rates[tier]).unwrap(),
                        "{spend}"
                    );
                }
            }
            let next = reached.map_or(0, |tier| tier + 1);
            match evaluation.benefit.next_tier {
                Some(found) => {
                    assert_eq!(found.tier.threshold, thresholds[next], "{spend}");
                    assert_eq!(found.missing, thresholds[next] - spend);
                    assert_eq!(found.tier.reward, percent(rates[next]));
                }
                None => assert_eq!(next, thresholds.len(), "{spend}: no next tier"),
            }
        }
    }
}

#[test]
fn quantity_tiers_free_the_cheapest_units_at_every_threshold() {
    let free = |units| TierReward::FreeUnits { units };
    let bulk = tiered("BULK", TierBasis::Quantity, &[(3, free(1)), (5, free(2))]);
    for (units, freed, missing) in [
        (2, None, Some(1)),
        (3, Some(1), Some(2)),
        (4, Some(1), Some(1)),
        (5, Some(2), None),
        (6, Some(2), None),
    ] {
        // One dear line and `units - 1` cheap units: the cheap ones go free first.
        let cart = checkout(vec![
            line("dear", 50_000, 1),
            line("cheap", 10_000, units - 1),
        ]);
        let evaluation = evaluate(&bulk, &LedgerView::default(), &cart, NOW);
        match freed {
            None => assert_eq!(
                evaluation.reasons,
                [Reason::BelowMinimumQuantity {
                    minimum: 3,
                    missing: 1
                }]
            ),
            Some(freed) => {
                assert!(evaluation.is_valid(), "{units}: {:?}", evaluation.reasons);
                assert_eq!(evaluation.benefit.free_units, [0, freed]);
                assert_eq!(evaluation.benefit.total(), freed * 10_000);
            }
        }
        assert_eq!(evaluation.benefit.next_tier.map(|n| n.missing), missing);
    }
}

#[test]
fn tiers_measure_the_target_and_the_further_minimum_is_reported_once() {
    let mut ladder = spend_ladder();
    ladder.rules.target.product_ids = vec!["shoe".into()];
    // 900 on the target, 5,000 in the cart: the target is what counts.
    let cart = checkout(vec![line("shoe", 90_000, 1), line("hat", 410_000, 1)]);
    let evaluation = evaluate(&ladder, &LedgerView::default(), &cart, NOW);
    assert_eq!(
        evaluation.reasons,
        [Reason::BelowMinimumAmount {
            minimum: 100_000,
            missing: 10_000,
            currency: Currency::parse("INR").unwrap(),
        }]
    );
    ladder.rules.conditions.min_subtotal = 600_000;
    let evaluation = evaluate(&ladder, &LedgerView::default(), &cart, NOW);
    assert_eq!(
        evaluation.reasons,
        [Reason::BelowMinimumAmount {
            minimum: 600_000,
            missing: 100_000,
            currency: Currency::parse("INR").unwrap(),
        }]
    );
}

#[test]
fn applied_and_refused_tiered_coupons_carry_their_next_tier() {
    let priced = price(
        &checkout(vec![line("p", 220_000, 1)]),
        candidates(&[spend_ladder()]),
        NOW,
    );
    let applied = &priced.applied[0];
    assert_eq!(applied.benefit.total(), 11_000);
    assert_eq!(applied.benefit.next_tier.map(|n| n.missing), Some(30_000));
    let priced = price(
        &checkout(vec![line("p", 90_000, 1)]),
        candidates(&[spend_ladder()]),
        NOW,
    );
    assert_eq!(
        priced.rejected[0].next_tier.map(|n| n.missing),
        Some(10_000)
    );
}

// === properties ===

fn any_rule() -> impl Strategy<Value = DiscountRule> {
    prop_oneof![
        (1i64..5_000_000).prop_map(|amount| DiscountRule::FixedAmount { amount }),
        (1u32..=10_000, proptest::option::of(1i64..1_000_000)).prop_map(
            |(basis_points, max_discount)| DiscountRule::Percentage {
                basis_points,
                max_discount
            }
        ),
        proptest::option::of(1i64..10_000)
            .prop_map(|max_discount| DiscountRule::FreeShipping { max_discount }),
        (1u32..4, 1u32..3, 0u32..3).prop_map(|(buy, get, max_applications)| DiscountRule::BuyGet {
            buy,
            get,
            max_applications
        }),
        (0i64..200_000).prop_map(|unit_price| DiscountRule::ExclusivePrice { unit_price }),
        any_tiered(),
    ]
}

/// Valid tiers: increasing thresholds, one kind of reward, each larger than the one below.
fn any_tiered() -> impl Strategy<Value = DiscountRule> {
    (
        prop_oneof![Just(TierBasis::Spend), Just(TierBasis::Quantity)],
        proptest::collection::vec((1i64..200_000, 1i64..2_000), 1..6),
        0u8..3,
    )
        .prop_map(|(basis, steps, kind)| {
            let (mut threshold, mut size) = (0i64, 0i64);
            let tiers = steps
                .into_iter()
                .map(|(step, grow)| {
                    threshold += match basis {
                        TierBasis::Spend => step,
                        TierBasis::Quantity => step % 10 + 1,
                    };
                    size += grow;
                    let reward = match kind {
                        0 => percent(u32::try_from(size.min(10_000)).unwrap()),
                        1 => TierReward::FixedAmount { amount: size * 10 },
                        _ => TierReward::FreeUnits {
                            units: u32::try_from(size % 7 + 1).unwrap(),
                        },
                    };
                    Tier { threshold, reward }
                })
                .collect();
            DiscountRule::Tiered { basis, tiers }
        })
}

fn any_cart() -> impl Strategy<Value = Checkout> {
    (
        proptest::collection::vec((0i64..500_000, 0i64..200_000, 1i64..20, 0usize..3), 0..12),
        0i64..50_000,
        0i64..50_000,
        0i64..5_000_000,
    )
        .prop_map(|(lines, shipping, tax, amount)| {
            let lines = lines
                .into_iter()
                .enumerate()
                .map(|(i, (price, markup, quantity, category))| LineInput {
                    product_id: format!("p{i}"),
                    categories: vec![format!("c{category}")],
                    unit_price: Some(price),
                    original_unit_price: price + markup,
                    quantity,
                    ..Default::default()
                })
                .collect();
            Checkout::parse(
                CheckoutInput {
                    currency: "INR".into(),
                    lines,
                    shipping,
                    tax,
                    subtotal_override: amount,
                    ..Default::default()
                },
                "checkout",
            )
            .unwrap()
        })
}

fn any_coupons() -> impl Strategy<Value = Vec<Coupon>> {
    proptest::collection::vec(
        (
            any_rule(),
            any::<bool>(),
            -2i32..3,
            any::<bool>(),
            proptest::option::of(0usize..3),
            proptest::option::of(1i64..100_000),
        ),
        1..4,
    )
    .prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(
                |(i, (rule, stackable, priority, replaces, category, budget))| {
                    let mut c = coupon(&format!("C{i}"), rule);
                    c.rules.stacking = Stacking {
                        stackable,
                        priority,
                        replaces_item_promotions: replaces,
                        ..Stacking::default()
                    };
                    c.rules.target.categories =
                        category.map(|n| vec![format!("c{n}")]).unwrap_or_default();
                    c.rules.limits.budget = budget;
                    c
                },
            )
            .collect()
    })
}

proptest! {
    #[test]
    fn pricing_is_exact_and_never_negative(checkout in any_cart(), coupons in any_coupons()) {
        let priced = price(&checkout, candidates(&coupons), NOW);
        let line_sum: i64 = priced.lines.iter().map(|l| l.coupon_discount).sum();
        let order_discounts: i64 = priced.applied.iter().map(|a| a.benefit.order_discount).sum();
        prop_assert_eq!(line_sum + order_discounts, priced.item_discount);
        for line in &priced.lines {
            prop_assert!(line.coupon_discount >= 0 && line.total >= 0, "{:?}", line);
            prop_assert_eq!(line.total, line.subtotal - line.coupon_discount);
        }
        prop_assert!(priced.shipping_discount >= 0 && priced.shipping_discount <= priced.shipping);
        prop_assert!(priced.item_discount <= priced.subtotal);
        prop_assert!(priced.total >= 0);
        prop_assert_eq!(
            priced.total,
            priced.subtotal - priced.item_discount + priced.shipping - priced.shipping_discount + priced.tax
        );
        for applied in &priced.applied {
            let rules = &applied.coupon.rules;
            if let DiscountRule::Percentage { max_discount: Some(cap), .. } = rules.discount {
                prop_assert!(applied.benefit.total() <= cap);
            }
            if let Some(budget) = rules.limits.budget {
                prop_assert!(applied.benefit.total() <= budget);
            }
        }
    }

    /// More of the same line never lowers a percentage or fixed tiered discount, and no tiered
    /// discount exceeds what the target costs.
    #[test]
    fn tiered_discounts_grow_with_the_cart_and_stay_within_it(
        rule in any_tiered(),
        price_each in 1i64..300_000,
        quantity in 1i64..30,
        other in 0i64..300_000,
    ) {
        let coupon = coupon("TIERS", rule.clone());
        let ledger = LedgerView::default();
        let discount = |units: i64| {
            let cart = checkout(vec![line("p", price_each, units), line("q", other.max(1), 1)]);
            let evaluation = evaluate(&coupon, &ledger, &cart, NOW);
            let total = if evaluation.is_valid() { evaluation.benefit.total() } else { 0 };
            (total, cart.cart.subtotal(false))
        };
        let (smaller, subtotal) = discount(quantity);
        let (larger, _) = discount(quantity + 1);
        prop_assert!(smaller <= subtotal);
        // Freeing the cheapest units is not monotonic: one more cheap unit can replace a dearer
        // free one, as with buy-get.
        let frees_units = matches!(
            &rule,
            DiscountRule::Tiered { tiers, .. }
                if matches!(tiers[0].reward, TierReward::FreeUnits { .. })
        );
        if !frees_units {
            prop_assert!(smaller <= larger, "{} then {}", smaller, larger);
        }
    }

    #[test]
    fn pricing_is_deterministic(checkout in any_cart(), coupons in any_coupons()) {
        let mut reversed = coupons.clone();
        reversed.reverse();
        let first = price(&checkout, candidates(&coupons), NOW);
        let again = price(&checkout, candidates(&reversed), NOW);
        prop_assert_eq!(&first.lines, &again.lines);
        prop_assert_eq!(first.total, again.total);
        prop_assert_eq!(first.applied.len(), again.applied.len());
    }
}
