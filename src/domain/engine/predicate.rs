//! Typed predicates on order and item fields and metadata, such as `cart_qty > 10`.
//!
//! Values that parse as decimal numbers on both sides compare as numbers (exactly, without
//! floats); anything else compares as case-insensitive text. Money fields are minor units.
//!
//! A field named `metadata.<key>` is always the metadata key, so a caller's own `cart_qty` or
//! `category` can be tested although built-in fields carry those names; a bare name is a
//! built-in field first and metadata otherwise.

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::domain::{
    cart::{Checkout, Line},
    coupon::{Predicate, PredicateOperator},
};

/// The prefix that addresses metadata whatever the key's name.
pub const METADATA_PREFIX: &str = "metadata.";

/// Order fields whose values are money, in minor units of the cart's currency.
const ORDER_MONEY_FIELDS: &[&str] = &[
    "subtotal",
    "selling_price_subtotal",
    "original_price_subtotal",
    "shipping",
    "tax",
];

/// Whether an order predicate's field is money (its values are minor units and messages write
/// them as amounts). Metadata is never money: its values are the caller's own text.
pub fn is_money_order_field(field: &str) -> bool {
    ORDER_MONEY_FIELDS.contains(&field)
}

/// The values of an order field or order metadata key; `None` when the checkout has none.
pub fn order_values(field: &str, checkout: &Checkout, original: bool) -> Option<Vec<String>> {
    let cart = &checkout.cart;
    if let Some(key) = field.strip_prefix(METADATA_PREFIX) {
        return cart.metadata.get(key).map(|v| vec![v.clone()]);
    }
    let value = match field {
        "subtotal" => cart.subtotal(original).to_string(),
        // The redeem API's order totals at selling and at original (MRP) prices.
        "selling_price_subtotal" => cart.subtotal(false).to_string(),
        "original_price_subtotal" => cart.subtotal(true).to_string(),
        "quantity" | "cart_qty" => cart.quantity().to_string(),
        "shipping" => cart.shipping.to_string(),
        "tax" => cart.tax.to_string(),
        "payment_method" | "payment_mode" => present(&checkout.payment_method)?,
        "channel" | "platform" => present(&checkout.channel)?,
        "order_type" => present(&checkout.order_type)?,
        other => cart.metadata.get(other)?.clone(),
    };
    Some(vec![value])
}

/// The values of an item field or item metadata key; `None` when the line has none.
pub fn item_values(field: &str, line: &Line, original: bool) -> Option<Vec<String>> {
    if let Some(key) = field.strip_prefix(METADATA_PREFIX) {
        return line.metadata.get(key).map(|v| vec![v.clone()]);
    }
    let value = match field {
        "product_id" => line.product_id.clone(),
        "sku" => present(&line.sku)?,
        "name" => present(&line.name)?,
        "category" | "categories" => {
            return (!line.categories.is_empty()).then(|| line.categories.clone());
        }
        "unit_price" | "selling_price" => line.price(original).to_string(),
        "original_unit_price" | "original_price" => line.original_unit_price.to_string(),
        "quantity" => line.quantity.to_string(),
        other => line.metadata.get(other)?.clone(),
    };
    Some(vec![value])
}

fn present(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// Whether the predicate holds for a field's values: for a multi-valued field (categories), when
/// any value satisfies it; for NE, when none is equal. A missing field never satisfies.
pub fn holds(predicate: &Predicate, values: Option<&[String]>) -> bool {
    let Some(values) = values else {
        return false;
    };
    match predicate.operator {
        PredicateOperator::Ne => values
            .iter()
            .all(|value| !predicate.values.iter().any(|wanted| equal(value, wanted))),
        _ => values.iter().any(|value| satisfies(predicate, value)),
    }
}

fn satisfies(predicate: &Predicate, value: &str) -> bool {
    let first = predicate.values.first().map(String::as_str).unwrap_or("");
    match predicate.operator {
        PredicateOperator::Eq => equal(value, first),
        PredicateOperator::Ne => !equal(value, first),
        PredicateOperator::In => predicate.values.iter().any(|wanted| equal(value, wanted)),
        PredicateOperator::Contains => value.to_lowercase().contains(&first.to_lowercase()),
        PredicateOperator::Gt => compare(value, first).is_gt(),
        PredicateOperator::Gte => compare(value, first).is_ge(),
        PredicateOperator::Lt => compare(value, first).is_lt(),
        PredicateOperator::Lte => compare(value, first).is_le(),
    }
}

fn equal(a: &str, b: &str) -> bool {
    compare(a, b).is_eq()
}

fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    match (Decimal::from_str(a.trim()), Decimal::from_str(b.trim())) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.trim().to_lowercase().cmp(&b.trim().to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn predicate(operator: PredicateOperator, values: &[&str]) -> Predicate {
        Predicate {
            field: "f".into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn check(p: &Predicate, value: &str) -> bool {
        holds(p, Some(&[value.to_owned()]))
    }

    #[test]
    fn numbers_compare_as_numbers_and_text_as_text() {
        use PredicateOperator::*;
        assert!(check(&predicate(Gt, &["10"]), "11"));
        assert!(
            !check(&predicate(Gt, &["10"]), "9.99"),
            "not as text: '9.99' > '10'"
        );
        assert!(check(&predicate(Eq, &["200"]), "200.00"));
        assert!(check(&predicate(Lte, &["200.5"]), "200.50"));
        assert!(check(&predicate(In, &["brand A", "brand B"]), "Brand B"));
        assert!(check(&predicate(Contains, &["blue"]), "Navy BLUE"));
        assert!(check(&predicate(Ne, &["x"]), "y"));
        assert!(
            !holds(&predicate(Eq, &["x"]), None),
            "a missing field never satisfies"
        );
    }

    #[test]
    fn multi_valued_fields_match_any_and_ne_means_none() {
        let categories = ["grocery".to_owned(), "vegetables".to_owned()];
        assert!(holds(
            &predicate(PredicateOperator::Eq, &["vegetables"]),
            Some(&categories)
        ));
        assert!(!holds(
            &predicate(PredicateOperator::Ne, &["vegetables"]),
            Some(&categories)
        ));
    }
}
