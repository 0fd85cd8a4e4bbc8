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

use super::{cart::Checkout, coupon::CouponRules, Violations};

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
        "an automatic promotion may name at most 1000 combinations of channel and \
         product, SKU or category",
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
