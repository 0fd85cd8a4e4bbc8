//! Automatic promotions: coupons that apply without a typed code whenever their conditions hold.
//!
//! They are indexed by what a checkout must have for them to possibly apply: the cart's
//! currency, the checkout's channel and one of the cart's products, SKUs or categories. A
//! promotion is stored under every combination of its currency (or [`ANY`]), each of its
//! channels (or [`ANY`]) and each product, SKU and category it targets (or [`ANY`] when it
//! targets the whole order); a checkout looks up its own few keys. So the promotions read for a
//! checkout are those that share its currency, channel and an item with it, and the engine
//! decides the rest (dates, customers, minimums, predicates, limits) on those alone.
//!
//! Exclusions and item predicates only narrow a target, so they are left to the engine. Channels
//! are compared ignoring ASCII case, as the engine does.

use super::{cart::Checkout, coupon::CouponRules, Problem, Violations};

/// The key part that matches every value.
pub const ANY: &str = "*";

/// Most keys one automatic promotion may be indexed under (channels x targets), so that one
/// promotion cannot make the index arbitrarily large.
pub const MAX_KEYS: usize = 1_000;

/// One index entry of an automatic promotion.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PromotionKey {
    pub currency: String,
    pub channel: String,
    pub target: String,
}

/// The target keys of a product, SKU and category; prefixed so that a product id and a category
/// with the same text stay apart.
fn product_key(id: &str) -> String {
    format!("p:{id}")
}

fn sku_key(sku: &str) -> String {
    format!("s:{sku}")
}

fn category_key(category: &str) -> String {
    format!("c:{category}")
}

fn channel_key(channel: &str) -> String {
    channel.to_ascii_lowercase()
}

/// Every index key of an automatic promotion with these rules, sorted and without duplicates.
pub fn keys(rules: &CouponRules) -> Vec<PromotionKey> {
    let currency = rules
        .currency
        .map(|c| c.code().to_owned())
        .unwrap_or_else(|| ANY.to_owned());
    let channels: Vec<String> = if rules.conditions.channels.is_empty() {
        vec![ANY.to_owned()]
    } else {
        rules
            .conditions
            .channels
            .iter()
            .map(|c| channel_key(c))
            .collect()
    };
    let target = &rules.target;
    let mut targets: Vec<String> = target
        .product_ids
        .iter()
        .map(|p| product_key(p))
        .chain(target.skus.iter().map(|s| sku_key(s)))
        .chain(target.categories.iter().map(|c| category_key(c)))
        .collect();
    if targets.is_empty() {
        targets.push(ANY.to_owned());
    }
    let mut keys: Vec<PromotionKey> = channels
        .iter()
        .flat_map(|channel| {
            targets.iter().map(|target| PromotionKey {
                currency: currency.clone(),
                channel: channel.clone(),
                target: target.clone(),
            })
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Records that an automatic promotion with these rules would have too many index keys.
pub fn check(rules: &CouponRules, prefix: &str, violations: &mut Violations) {
    let channels = rules.conditions.channels.len().max(1);
    let target = &rules.target;
    let targets = (target.product_ids.len() + target.skus.len() + target.categories.len()).max(1);
    violations.require(
        channels.saturating_mul(targets) <= MAX_KEYS,
        &format!("{prefix}.automatic"),
        Problem::TooManyAutomaticKeys { max: MAX_KEYS },
    );
}

/// The keys a checkout looks up: every automatic promotion that can apply to it has one of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The cart's currency and [`ANY`].
    pub currencies: Vec<String>,
    /// The checkout's channel and [`ANY`]; `None` when the checkout names no channel, since the
    /// tenant's default channel, read in the same statement, may then stand for it.
    pub channels: Option<Vec<String>>,
    /// [`ANY`] and the cart's products, SKUs and categories.
    pub targets: Vec<String>,
}

impl Lookup {
    pub fn of(checkout: &Checkout) -> Self {
        let mut targets = vec![ANY.to_owned()];
        for line in &checkout.cart.lines {
            targets.push(product_key(&line.product_id));
            if !line.sku.is_empty() {
                targets.push(sku_key(&line.sku));
            }
            targets.extend(line.categories.iter().map(|c| category_key(c)));
        }
        targets.sort();
        targets.dedup();
        Self {
            currencies: vec![checkout.cart.currency.code().to_owned(), ANY.to_owned()],
            channels: (!checkout.channel.is_empty())
                .then(|| vec![channel_key(&checkout.channel), ANY.to_owned()]),
            targets,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{
        cart::{CheckoutInput, LineInput},
        coupon::{Conditions, Coupon, DiscountRule, Limits, Stacking, Target, Usage},
        engine::{self, LedgerView},
        Code, Currency, Timestamp,
    };

    fn finds(lookup: &Lookup, key: &PromotionKey) -> bool {
        lookup.currencies.contains(&key.currency)
            && lookup
                .channels
                .as_ref()
                .is_none_or(|channels| channels.contains(&key.channel))
            && lookup.targets.contains(&key.target)
    }

    fn promotion(
        currency: Option<&str>,
        channels: &[&str],
        products: &[&str],
        categories: &[&str],
    ) -> Coupon {
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        Coupon {
            id: "cpn_auto".into(),
            code: Code::parse("AUTO").unwrap(),
            campaign_id: None,
            active: true,
            automatic: true,
            rules: CouponRules {
                description: String::new(),
                currency: currency.map(|c| Currency::parse(c).unwrap()),
                discount: DiscountRule::Percentage {
                    basis_points: 1_000,
                    max_discount: None,
                },
                target: Target {
                    product_ids: strings(products),
                    categories: strings(categories),
                    ..Target::default()
                },
                conditions: Conditions {
                    channels: strings(channels),
                    ..Conditions::default()
                },
                limits: Limits::default(),
                stacking: Stacking::default(),
            },
            usage: Usage::default(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn checkout(currency: &str, channel: &str, lines: &[(&str, &str)]) -> Checkout {
        Checkout::parse(
            CheckoutInput {
                currency: currency.into(),
                channel: channel.into(),
                lines: lines
                    .iter()
                    .map(|(product, category)| LineInput {
                        product_id: product.to_string(),
                        categories: vec![category.to_string()],
                        unit_price: Some(1_000),
                        quantity: 1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            "checkout",
        )
        .unwrap()
    }

    fn found(coupon: &Coupon, checkout: &Checkout) -> bool {
        let lookup = Lookup::of(checkout);
        keys(&coupon.rules).iter().any(|key| finds(&lookup, key))
    }

    #[test]
    fn promotions_that_cannot_match_are_not_found() {
        let cart = checkout("INR", "web", &[("p1", "shoes")]);
        assert!(found(&promotion(None, &[], &[], &[]), &cart));
        assert!(found(
            &promotion(Some("INR"), &["WEB"], &[], &["shoes"]),
            &cart
        ));
        assert!(!found(&promotion(Some("USD"), &[], &[], &[]), &cart));
        assert!(!found(&promotion(None, &["app"], &[], &[]), &cart));
        assert!(!found(&promotion(None, &[], &["p2"], &["hats"]), &cart));
        // A category named like a product stays a category.
        assert!(!found(&promotion(None, &[], &[], &["p1"]), &cart));
        // Without a channel, the tenant's default may stand for one: every channel is found.
        let no_channel = checkout("INR", "", &[("p1", "shoes")]);
        assert!(found(&promotion(None, &["app"], &[], &[]), &no_channel));
    }

    #[test]
    fn keys_cover_every_channel_and_target() {
        let coupon = promotion(Some("INR"), &["web", "app"], &["p1"], &["shoes"]);
        assert_eq!(keys(&coupon.rules).len(), 4);
        let mut violations = Violations::new();
        let mut wide = coupon.rules.clone();
        wide.target.product_ids = (0..1_000).map(|n| format!("p{n}")).collect();
        check(&wide, "coupon", &mut violations);
        assert!(
            violations.finish(()).is_err(),
            "2 channels x 1001 targets is too many"
        );
    }

    const CHANNELS: [&str; 3] = ["web", "App", "kiosk"];
    const NAMES: [&str; 3] = ["a", "b", "c"];

    fn pick<'a>(universe: &[&'a str], mask: u8) -> Vec<&'a str> {
        universe
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, s)| *s)
            .collect()
    }

    proptest! {
        /// The index never hides a promotion that applies: whenever the engine says it applies,
        /// the checkout's lookup finds one of its keys.
        #[test]
        fn every_promotion_that_applies_is_found(
            coupon_currency in prop::option::of(prop::sample::select(vec!["INR", "USD"])),
            channels in 0u8..8,
            products in 0u8..8,
            categories in 0u8..8,
            cart_currency in prop::sample::select(vec!["INR", "USD"]),
            channel in prop::sample::select(vec!["", "WEB", "app", "pos"]),
            lines in prop::collection::vec((0usize..3, 0usize..3), 0..4),
        ) {
            let coupon = promotion(
                coupon_currency,
                &pick(&CHANNELS, channels),
                &pick(&NAMES, products),
                &pick(&NAMES, categories),
            );
            let lines: Vec<(&str, &str)> =
                lines.iter().map(|(p, c)| (NAMES[*p], NAMES[*c])).collect();
            let cart = checkout(cart_currency, channel, &lines);
            let evaluation = engine::evaluate(&coupon, &LedgerView::default(), &cart, Timestamp(0));
            if evaluation.is_valid() {
                prop_assert!(found(&coupon, &cart));
            }
        }
    }
}
