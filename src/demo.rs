//! Demo mode: a demo tenant with a documented development key and data drawn from the source
//! APIs, so that every grpcurl example in the README works as printed.

use rand::Rng;

use crate::{
    domain::{
        api_key::IssuedKey,
        audit::{AuditEntry, COMMAND_LINE_ACTOR},
        coupon::{
            Conditions, CouponRules, CustomerSegment, DiscountRule, Limits, NewCoupon, Stacking,
            Target, Tier, TierBasis, TierReward,
        },
        pin::PinKey,
        product::{NotificationTemplates, ProductSpec, SealedPin},
        Code, Currency, Scopes, Violations,
    },
    store::{Store, StoreError},
};

/// Name of the demo tenant.
pub const DEMO_TENANT: &str = "demo";
/// Key id of the demo key.
pub const DEMO_KEY_ID: &str = "demo";
/// Secret of the demo key. Development only: it is printed in the README.
pub const DEMO_SECRET: &str = "coupon-demo-secret";
/// PINs put in stock for the demo product.
const DEMO_PINS: usize = 100;
/// Credits for buying demo PINs: 1,000,000.00 NPR.
const DEMO_CREDITS: i64 = 100_000_000;

/// The demo bearer token, `demo.coupon-demo-secret`.
pub fn demo_token() -> String {
    format!("{DEMO_KEY_ID}.{DEMO_SECRET}")
}

/// Creates the demo tenant and its data unless it exists; returns the demo bearer token.
pub async fn seed(store: &Store, pin_key: &PinKey) -> Result<String, StoreError> {
    if store.find_tenant_by_name(DEMO_TENANT).await?.is_some() {
        return Ok(demo_token());
    }
    let key = IssuedKey {
        key_id: DEMO_KEY_ID.to_owned(),
        secret: DEMO_SECRET.to_owned(),
    };
    let tenant = store
        .create_tenant(DEMO_TENANT, &Scopes::all(), &key)
        .await?;
    // The seed is recorded like any admin change, under the command line's actor.
    let seeded = |rpc, resource| AuditEntry::new(COMMAND_LINE_ACTOR, rpc, resource);
    for coupon in demo_coupons()? {
        let audit = seeded("CreateCoupon", "coupon").with("code", coupon.code().as_str());
        store.insert_coupon(&tenant.id, &coupon, &audit).await?;
    }
    let spec = demo_product()?;
    let audit = seeded("CreateProduct", "product").with("value", spec.value.as_str());
    let product = store.insert_product(&tenant.id, &spec, &audit).await?;
    let pins = (0..DEMO_PINS)
        .map(|n| {
            let pin = format!("{:012}", rand::rng().random_range(0..1_000_000_000_000u64));
            Ok(SealedPin {
                ciphertext: pin_key
                    .seal(&pin)
                    .map_err(|e| StoreError::Setup(e.to_string()))?,
                digest: pin_key.digest(&pin),
                serial: format!("DGO-{:04}", n + 1),
                expires_at: None,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    store
        .import_pins(
            &tenant.id,
            &product.idx,
            pins,
            &seeded("ImportPins", "product"),
        )
        .await?;
    store
        .add_credits(
            &tenant.id,
            DEMO_CREDITS,
            "demo-initial-credits",
            "demo credits",
            crate::domain::Timestamp::now(),
            &seeded("TopUpCredits", "credit_entry").with("amount", DEMO_CREDITS),
        )
        .await?;
    tracing::info!(tenant = %tenant.id, "demo tenant created");
    Ok(demo_token())
}

fn currency(code: &str) -> Result<Currency, StoreError> {
    Currency::parse(code).map_err(|e| StoreError::Setup(e.to_string()))
}

fn demo_coupons() -> Result<Vec<NewCoupon>, StoreError> {
    let inr = currency("INR")?;
    let rules = |description: &str, discount, conditions| CouponRules {
        description: description.to_owned(),
        currency: Some(inr),
        discount,
        target: Target::default(),
        conditions,
        limits: Limits::default(),
        stacking: Stacking::default(),
    };
    // An automatic promotion on umbrellas, which no other README example's cart holds, so it
    // shows only where the README shows it.
    let umbrellas = CouponRules {
        target: Target {
            categories: vec!["umbrellas".to_owned()],
            ..Target::default()
        },
        stacking: Stacking {
            stackable: true,
            ..Stacking::default()
        },
        ..rules(
            "Monsoon sale: 10% off umbrellas, no code needed",
            DiscountRule::Percentage {
                basis_points: 1_000,
                max_discount: None,
            },
            Conditions::default(),
        )
    };
    let coupons = [
        (
            "SAVE200",
            rules(
                "Get ₹200 off on orders above ₹1499",
                DiscountRule::FixedAmount { amount: 20_000 },
                Conditions {
                    min_subtotal: 149_900,
                    ..Conditions::default()
                },
            ),
        ),
        (
            "FIRST20",
            rules(
                "Get 20% off on your first order",
                DiscountRule::Percentage {
                    basis_points: 2_000,
                    max_discount: Some(50_000),
                },
                Conditions {
                    min_subtotal: 99_900,
                    customer_segment: CustomerSegment::New,
                    ..Conditions::default()
                },
            ),
        ),
        (
            "FREEDEL",
            rules(
                "Free delivery",
                DiscountRule::FreeShipping { max_discount: None },
                Conditions::default(),
            ),
        ),
        (
            "SPENDMORE",
            rules(
                "5% off from ₹1000, 10% from ₹2500, 15% from ₹5000",
                DiscountRule::Tiered {
                    basis: TierBasis::Spend,
                    tiers: [(100_000, 500), (250_000, 1_000), (500_000, 1_500)]
                        .into_iter()
                        .map(|(threshold, basis_points)| Tier {
                            threshold,
                            reward: TierReward::Percentage { basis_points },
                        })
                        .collect(),
                },
                Conditions::default(),
            ),
        ),
        ("MONSOON-UMBRELLAS", umbrellas),
    ];
    coupons
        .into_iter()
        .map(|(code, rules)| {
            let automatic = code == "MONSOON-UMBRELLAS";
            let code = Code::parse(code).map_err(|e| StoreError::Setup(e.to_string()))?;
            NewCoupon::new(Some(code), rules, true, automatic, Violations::new())
                .map_err(|e| StoreError::Setup(format!("demo coupon: {e}")))
        })
        .collect()
}

fn demo_product() -> Result<ProductSpec, StoreError> {
    Ok(ProductSpec {
        name: "Fifa-2026".to_owned(),
        value: "fifa-2026".to_owned(),
        amount: 10_000,
        currency: Some(currency("NPR")?),
        active: true,
        templates: NotificationTemplates {
            sms: "Thank you for subscribing to Dishhome Go via {company}. Your coupon code is {pin}. Redeem it in the DGO app. T&C apply.".to_owned(),
            email_subject: "Purchase Confirmation — DGO Coupon Code".to_owned(),
            email_body: "Dear User,\n\nThank you for subscribing to the DGO coupon through {company}.\n\nYour Coupon Code: {pin}\n\nTo redeem your coupon, please apply the code within the DGO app.\n\nBest regards,\n{company}".to_owned(),
            company_name: "Khalti".to_owned(),
        },
    })
}
