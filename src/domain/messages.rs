//! Messages for people, in English and Indonesian, with amounts written the local way
//! (`₹1,499` in English, `Rp 1.499` in Indonesian).

use super::{
    coupon::{CustomerSegment, PredicateOperator, TierBasis, TierReward},
    engine::{NextTier, Reason},
    Code, Currency,
};

mod problems;

pub use problems::problem_message;

/// A problem's description in English, for the `Display` of the parse errors it stands for
/// (command-line output, logs).
pub fn english(problem: super::Problem) -> String {
    problem_message(&problem, Locale::En)
}

/// A language messages are written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Locale {
    #[default]
    En,
    Id,
}

impl Locale {
    /// The first supported language of an `accept-language` header, English by default.
    pub fn from_accept_language(header: &str) -> Self {
        header
            .split(',')
            .filter_map(|part| part.split(';').next())
            .map(|tag| tag.trim().to_ascii_lowercase())
            .find_map(|tag| match tag.split('-').next() {
                Some("id") | Some("in") => Some(Locale::Id),
                Some("en") => Some(Locale::En),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// BCP-47 tag, as sent in `google.rpc.LocalizedMessage`.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en-US",
            Locale::Id => "id-ID",
        }
    }
}

/// `amount` minor units of `currency`, written for `locale`; the fraction is left out when zero.
pub fn format_amount(amount: i64, currency: Currency, locale: Locale) -> String {
    let exponent = currency.exponent();
    let scale = 10i64.pow(exponent);
    let (whole, fraction) = (amount.abs() / scale, amount.abs() % scale);
    let (group, decimal) = match locale {
        Locale::En => (',', '.'),
        Locale::Id => ('.', ','),
    };
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(group);
        }
        grouped.push(digit);
    }
    if fraction > 0 {
        grouped.push(decimal);
        grouped.push_str(&format!("{fraction:0width$}", width = exponent as usize));
    }
    let sign = if amount < 0 { "-" } else { "" };
    let symbol = match currency.code() {
        "INR" => "₹",
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "IDR" => "Rp ",
        "NPR" => "Rs ",
        other => return format!("{sign}{other} {grouped}"),
    };
    format!("{sign}{symbol}{grouped}")
}

/// The message for a reason.
pub fn reason_message(reason: &Reason, locale: Locale) -> String {
    use Reason::*;
    match (locale, reason) {
        (Locale::En, CouponNotFound) => "This coupon code does not exist.".into(),
        (Locale::Id, CouponNotFound) => "Gagal! Kode diskon ini tidak ditemukan.".into(),
        (Locale::En, CouponInactive) => "This coupon code is no longer active.".into(),
        (Locale::Id, CouponInactive) => "Gagal! Kode diskon ini sudah tidak aktif.".into(),
        (Locale::En, CouponNotStarted { .. }) => "This coupon code is not valid yet.".into(),
        (Locale::Id, CouponNotStarted { .. }) => {
            "Gagal! Kode diskon ini belum berlaku dan tidak dapat digunakan.".into()
        }
        (Locale::En, CouponExpired { .. }) => "This coupon code has expired.".into(),
        (Locale::Id, CouponExpired { .. }) => {
            "Gagal! Kode diskon ini telah kadaluarsa dan tidak dapat digunakan.".into()
        }
        (Locale::En, CurrencyMismatch { coupon, .. }) => {
            format!("This coupon code only applies to payments in {coupon}.")
        }
        (Locale::Id, CurrencyMismatch { coupon, .. }) => {
            format!("Gagal! Kode diskon ini hanya berlaku untuk pembayaran dalam {coupon}.")
        }
        (Locale::En, ChannelNotEligible { channel }) => {
            format!(
                "This coupon code cannot be used on {}.",
                or_this(channel, "this platform")
            )
        }
        (Locale::Id, ChannelNotEligible { channel }) => format!(
            "Gagal! Kode diskon tidak dapat digunakan di {}.",
            or_this(channel, "platform ini")
        ),
        (Locale::En, OrderTypeNotEligible { order_type }) => format!(
            "This coupon code cannot be used for {}.",
            or_this(order_type, "this kind of order")
        ),
        (Locale::Id, OrderTypeNotEligible { order_type }) => format!(
            "Gagal! Kode diskon tidak dapat digunakan untuk produk {}",
            or_this(order_type, "ini")
        ),
        (Locale::En, PaymentMethodNotEligible { payment_method }) => {
            format!("This coupon code cannot be used when paying with {payment_method}.")
        }
        (Locale::Id, PaymentMethodNotEligible { payment_method }) => {
            format!("Gagal! Kode diskon tidak berlaku untuk pembayaran dengan {payment_method}.")
        }
        (Locale::En, CustomerNotEligible { segment }) => match segment {
            CustomerSegment::New => "This coupon code is only for new customers.".into(),
            CustomerSegment::Returning => {
                "This coupon code is only for returning customers.".into()
            }
            _ => "This coupon code is not available to you.".into(),
        },
        (Locale::Id, CustomerNotEligible { segment }) => match segment {
            CustomerSegment::New => {
                "Gagal! Kode diskon ini hanya berlaku untuk pelanggan baru.".into()
            }
            CustomerSegment::Returning => {
                "Gagal! Kode diskon ini hanya berlaku untuk pelanggan lama.".into()
            }
            _ => "Gagal! Kode diskon ini tidak berlaku untuk Anda.".into(),
        },
        (Locale::En, SignInRequired { segment }) => match segment {
            CustomerSegment::New => {
                "Sign in to use this coupon code: it is only for new customers.".into()
            }
            CustomerSegment::Returning => {
                "Sign in to use this coupon code: it is only for returning customers.".into()
            }
            _ => "Sign in to use this coupon code.".into(),
        },
        (Locale::Id, SignInRequired { segment }) => match segment {
            CustomerSegment::New => {
                "Gagal! Silakan masuk untuk memakai kode diskon ini: hanya untuk pelanggan baru."
                    .into()
            }
            CustomerSegment::Returning => {
                "Gagal! Silakan masuk untuk memakai kode diskon ini: hanya untuk pelanggan lama."
                    .into()
            }
            _ => "Gagal! Silakan masuk untuk memakai kode diskon ini.".into(),
        },
        (Locale::En, PhoneNotVerified) => {
            "Verify your phone number to use this coupon code.".into()
        }
        (Locale::Id, PhoneNotVerified) => {
            "Gagal! Verifikasi nomor telepon Anda untuk menggunakan kode diskon ini.".into()
        }
        (Locale::En, NotCombinableWithPoints) => {
            "This coupon code cannot be combined with loyalty points.".into()
        }
        (Locale::Id, NotCombinableWithPoints) => {
            "Gagal! Kode diskon ini tidak dapat digabung dengan poin loyalitas.".into()
        }
        (Locale::En, ReferrerCannotUse) => "You cannot use your own referral code.".into(),
        (Locale::Id, ReferrerCannotUse) => {
            "Gagal! Anda tidak dapat menggunakan kode referral Anda sendiri.".into()
        }
        (
            Locale::En,
            PredicateFailed {
                field,
                operator,
                values,
                currency,
            },
        ) => format!(
            "{field} should be {} {}.",
            operator_words(*operator, locale),
            predicate_values(values, *currency, locale)
        ),
        (
            Locale::Id,
            PredicateFailed {
                field,
                operator,
                values,
                currency,
            },
        ) => format!(
            "Gagal! {field} harus {} {}.",
            operator_words(*operator, locale),
            predicate_values(values, *currency, locale)
        ),
        (Locale::En, NoEligibleItems) => {
            "No item in the cart is eligible for this coupon code.".into()
        }
        (Locale::Id, NoEligibleItems) => {
            "Gagal! Tidak ada produk di keranjang yang berlaku untuk kode diskon ini.".into()
        }
        (
            Locale::En,
            BelowMinimumAmount {
                minimum, currency, ..
            },
        ) => format!(
            "This coupon code only applies to orders of at least {}.",
            format_amount(*minimum, *currency, locale)
        ),
        (
            Locale::Id,
            BelowMinimumAmount {
                minimum, currency, ..
            },
        ) => format!(
            "Kode diskon ini hanya berlaku untuk transaksi dengan harga minimal {}.",
            format_amount(*minimum, *currency, locale)
        ),
        (Locale::En, BelowMinimumQuantity { minimum, .. }) => {
            format!("This coupon code needs at least {minimum} items in the cart.")
        }
        (Locale::Id, BelowMinimumQuantity { minimum, .. }) => {
            format!("Gagal! Kode diskon ini membutuhkan minimal {minimum} produk di keranjang.")
        }
        (Locale::En, UsageLimitReached) => "This coupon code has reached its usage limit.".into(),
        (Locale::Id, UsageLimitReached) => {
            "Gagal! Kode diskon telah mencapai batas pemakaian dan tidak dapat digunakan kembali."
                .into()
        }
        (Locale::En, CustomerLimitReached) => "You have already used this coupon code.".into(),
        (Locale::Id, CustomerLimitReached) => {
            "Gagal! Anda telah mencapai batas pemakaian kode diskon ini.".into()
        }
        (Locale::En, BudgetExhausted) => "This coupon code's budget is used up.".into(),
        (Locale::Id, BudgetExhausted) => "Gagal! Kuota diskon untuk kode ini sudah habis.".into(),
        (Locale::En, NoDiscount) => {
            "This coupon code gives no discount on this order, so it was not used.".into()
        }
        (Locale::Id, NoDiscount) => {
            "Gagal! Kode diskon ini tidak memberikan potongan untuk pesanan ini, jadi tidak dipakai."
                .into()
        }
        (Locale::En, NotCombinable { with }) => {
            format!("This coupon code cannot be combined with {with}.")
        }
        (Locale::Id, NotCombinable { with }) => {
            format!("Gagal! Kode diskon ini tidak dapat digabung dengan {with}.")
        }
    }
}

/// The near-miss hint, such as "Add Rp 300 to unlock SAVE200".
pub fn unlock_hint(code: &Code, missing: i64, currency: Currency, locale: Locale) -> String {
    let amount = format_amount(missing, currency, locale);
    match locale {
        Locale::En => format!("Add {amount} to unlock {code}"),
        Locale::Id => format!("Tambah {amount} lagi untuk memakai {code}"),
    }
}

/// The next tier's hint, such as "Add ₹300 for 10% off"; amounts in `currency`.
pub fn next_tier_hint(next: &NextTier, currency: Currency, locale: Locale) -> String {
    let missing = match next.basis {
        TierBasis::Spend => format_amount(next.missing, currency, locale),
        TierBasis::Quantity => match locale {
            Locale::En => format!("{} more item(s)", next.missing),
            Locale::Id => format!("{} produk", next.missing),
        },
    };
    let reward = match (locale, next.tier.reward) {
        (_, TierReward::Percentage { basis_points }) => {
            let percent = format_percent(basis_points, locale);
            match locale {
                Locale::En => format!("{percent} off"),
                Locale::Id => format!("diskon {percent}"),
            }
        }
        (Locale::En, TierReward::FixedAmount { amount }) => {
            format!("{} off", format_amount(amount, currency, locale))
        }
        (Locale::Id, TierReward::FixedAmount { amount }) => {
            format!("potongan {}", format_amount(amount, currency, locale))
        }
        (Locale::En, TierReward::FreeUnits { units }) => format!("{units} free item(s)"),
        (Locale::Id, TierReward::FreeUnits { units }) => format!("{units} produk gratis"),
    };
    match locale {
        Locale::En => format!("Add {missing} for {reward}"),
        Locale::Id => format!("Tambah {missing} lagi untuk {reward}"),
    }
}

/// Basis points as a percentage without trailing zeros: 1000 is "10%", 1250 "12.5%" ("12,5%").
fn format_percent(basis_points: u32, locale: Locale) -> String {
    let (whole, hundredths) = (basis_points / 100, basis_points % 100);
    if hundredths == 0 {
        return format!("{whole}%");
    }
    let decimal = match locale {
        Locale::En => '.',
        Locale::Id => ',',
    };
    let fraction = format!("{hundredths:02}");
    format!("{whole}{decimal}{}%", fraction.trim_end_matches('0'))
}

/// The message for a coupon that applied.
pub fn applied_message(locale: Locale) -> &'static str {
    match locale {
        Locale::En => "Coupon applied successfully",
        Locale::Id => "Kode diskon berhasil digunakan",
    }
}

fn operator_words(operator: PredicateOperator, locale: Locale) -> &'static str {
    use PredicateOperator::*;
    match (locale, operator) {
        (Locale::En, Eq) => "equal to",
        (Locale::En, Ne) => "other than",
        (Locale::En, Gt) => "greater than",
        (Locale::En, Gte) => "at least",
        (Locale::En, Lt) => "less than",
        (Locale::En, Lte) => "at most",
        (Locale::En, In) => "one of",
        (Locale::En, Contains) => "containing",
        (Locale::Id, Eq) => "sama dengan",
        (Locale::Id, Ne) => "selain",
        (Locale::Id, Gt) => "lebih dari",
        (Locale::Id, Gte) => "minimal",
        (Locale::Id, Lt) => "kurang dari",
        (Locale::Id, Lte) => "maksimal",
        (Locale::Id, In) => "salah satu dari",
        (Locale::Id, Contains) => "mengandung",
    }
}

/// A predicate's operands: amounts the local way when the field is money and the operand is a
/// whole number of minor units, otherwise as the coupon states them.
fn predicate_values(values: &[String], currency: Option<Currency>, locale: Locale) -> String {
    let written: Vec<String> = values
        .iter()
        .map(|value| match (currency, value.parse::<i64>()) {
            (Some(currency), Ok(minor)) => format_amount(minor, currency, locale),
            _ => value.clone(),
        })
        .collect();
    written.join(", ")
}

fn or_this<'a>(value: &'a str, fallback: &'a str) -> &'a str {
    if value.is_empty() {
        fallback
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_amounts_the_local_way() {
        let idr = Currency::parse("IDR").unwrap();
        let inr = Currency::parse("INR").unwrap();
        assert_eq!(format_amount(149_900, idr, Locale::Id), "Rp 1.499");
        assert_eq!(format_amount(149_900, inr, Locale::En), "₹1,499");
        assert_eq!(format_amount(123_456_789, inr, Locale::En), "₹1,234,567.89");
        assert_eq!(
            format_amount(5, Currency::parse("JPY").unwrap(), Locale::En),
            "JPY 5"
        );
    }

    #[test]
    fn reads_accept_language() {
        assert_eq!(
            Locale::from_accept_language("id-ID,id;q=0.9,en;q=0.8"),
            Locale::Id
        );
        assert_eq!(
            Locale::from_accept_language("fr-FR, en-GB;q=0.5"),
            Locale::En
        );
        assert_eq!(Locale::from_accept_language(""), Locale::En);
    }

    #[test]
    fn writes_money_predicates_as_amounts_and_metadata_as_sent() {
        let inr = Currency::parse("INR").unwrap();
        let money = Reason::PredicateFailed {
            field: "subtotal".into(),
            operator: PredicateOperator::Gt,
            values: vec!["20000".into()],
            currency: Some(inr),
        };
        assert_eq!(
            reason_message(&money, Locale::En),
            "subtotal should be greater than ₹200."
        );
        let metadata = Reason::PredicateFailed {
            field: "selling_price".into(),
            operator: PredicateOperator::Gt,
            values: vec!["200".into()],
            currency: None,
        };
        assert_eq!(
            reason_message(&metadata, Locale::Id),
            "Gagal! selling_price harus lebih dari 200."
        );
    }

    #[test]
    fn next_tier_hints_say_what_to_add_and_what_it_gives() {
        use crate::domain::coupon::Tier;
        let inr = Currency::parse("INR").unwrap();
        let idr = Currency::parse("IDR").unwrap();
        let spend = NextTier {
            basis: TierBasis::Spend,
            missing: 30_000,
            tier: Tier {
                threshold: 250_000,
                reward: TierReward::Percentage {
                    basis_points: 1_000,
                },
            },
        };
        assert_eq!(
            next_tier_hint(&spend, inr, Locale::En),
            "Add ₹300 for 10% off"
        );
        assert_eq!(
            next_tier_hint(&spend, idr, Locale::Id),
            "Tambah Rp 300 lagi untuk diskon 10%"
        );
        let fixed = NextTier {
            tier: Tier {
                threshold: 250_000,
                reward: TierReward::FixedAmount { amount: 50_050 },
            },
            ..spend
        };
        assert_eq!(
            next_tier_hint(&fixed, inr, Locale::En),
            "Add ₹300 for ₹500.50 off"
        );
        let units = NextTier {
            basis: TierBasis::Quantity,
            missing: 2,
            tier: Tier {
                threshold: 5,
                reward: TierReward::FreeUnits { units: 2 },
            },
        };
        assert_eq!(
            next_tier_hint(&units, inr, Locale::En),
            "Add 2 more item(s) for 2 free item(s)"
        );
        assert_eq!(
            next_tier_hint(&units, inr, Locale::Id),
            "Tambah 2 produk lagi untuk 2 produk gratis"
        );
        assert_eq!(format_percent(1_250, Locale::En), "12.5%");
        assert_eq!(format_percent(1_205, Locale::Id), "12,05%");
        assert_eq!(format_percent(1, Locale::En), "0.01%");
    }

    #[test]
    fn reproduces_the_payment_link_apis_minimum_message() {
        let reason = Reason::BelowMinimumAmount {
            minimum: 149_900,
            missing: 30_000,
            currency: Currency::parse("IDR").unwrap(),
        };
        assert_eq!(
            reason_message(&reason, Locale::Id),
            "Kode diskon ini hanya berlaku untuk transaksi dengan harga minimal Rp 1.499."
        );
    }
}
