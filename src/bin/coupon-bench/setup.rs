//! The suite's data, made only through the public AdminService, as an operator would.

use std::time::{Duration, Instant};

use anyhow::Context;
use coupon_service::pb::{self, admin_service_client::AdminServiceClient};
use futures::{stream, StreamExt, TryStreamExt};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::scenario::{Bearer, CURRENCY};

type Admin = AdminServiceClient<InterceptedService<Channel, Bearer>>;

/// Codes and products the scenarios use, as made by [`create`].
#[derive(Debug, Clone)]
pub struct Fixture {
    /// One coupon that applies to the Validate cart.
    pub validate_code: String,
    /// Two stackable coupons for Apply.
    pub apply_codes: Vec<String>,
    /// Coupons with a large limit that Redeem takes round robin.
    pub redeem_codes: Vec<String>,
    /// One coupon with a large limit that every hot Redeem takes.
    pub hot_code: String,
    /// (value, price, PINs in stock) of each product.
    pub products: Vec<(String, i64, usize)>,
    /// How long making the data took.
    pub setup_time: Duration,
}

/// Redeem's coupons: enough that 32 callers rarely meet on one row.
pub const REDEEM_COUPONS: usize = 200;
/// A limit no run reaches, so the guarded counter update runs on every Redeem.
const LARGE_LIMIT: i64 = 1_000_000_000;
/// PINs per ImportPins call: the API's maximum.
const PINS_PER_IMPORT: usize = 10_000;
/// Price of every benchmark product, in minor units.
pub const PRODUCT_PRICE: i64 = 10_000;

fn admin(channel: &Channel, token: &str) -> anyhow::Result<Admin> {
    Ok(AdminServiceClient::with_interceptor(
        channel.clone(),
        Bearer::new(token)?,
    ))
}

fn coupon(code: String, discount: pb::discount::Kind) -> pb::Coupon {
    pb::Coupon {
        code,
        currency: CURRENCY.to_owned(),
        discount: Some(pb::Discount {
            kind: Some(discount),
        }),
        ..Default::default()
    }
}

fn fixed(amount: i64) -> pb::discount::Kind {
    pb::discount::Kind::FixedAmount(pb::FixedAmount { amount })
}

fn limited(mut coupon: pb::Coupon) -> pb::Coupon {
    coupon.limits = Some(pb::Limits {
        max_redemptions: Some(LARGE_LIMIT),
        ..Default::default()
    });
    coupon
}

async fn create_coupons(
    channel: &Channel,
    token: &str,
    coupons: Vec<pb::Coupon>,
) -> anyhow::Result<()> {
    let admin = admin(channel, token)?;
    stream::iter(coupons)
        .map(|coupon| {
            let mut admin = admin.clone();
            async move {
                let code = coupon.code.clone();
                admin
                    .create_coupon(pb::CreateCouponRequest {
                        coupon: Some(coupon),
                    })
                    .await
                    .with_context(|| format!("creating coupon {code}"))
                    .map(drop)
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn create_product(
    channel: &Channel,
    token: &str,
    value: &str,
    pins: usize,
) -> anyhow::Result<()> {
    let mut admin = admin(channel, token)?;
    let product = admin
        .create_product(pb::CreateProductRequest {
            product: Some(pb::Product {
                name: format!("Benchmark {value}"),
                value: value.to_owned(),
                amount: PRODUCT_PRICE,
                currency: CURRENCY.to_owned(),
                active: Some(true),
                ..Default::default()
            }),
        })
        .await
        .with_context(|| format!("creating product {value}"))?
        .into_inner();
    let mut imported = 0;
    while imported < pins {
        let batch = PINS_PER_IMPORT.min(pins - imported);
        let request = pb::ImportPinsRequest {
            product_idx: product.idx.clone(),
            pins: (imported..imported + batch)
                .map(|i| pb::PinInput {
                    pin: format!("{value}-PIN-{i:09}"),
                    serial: format!("S{i:09}"),
                    expire_time: None,
                })
                .collect(),
        };
        admin
            .import_pins(request)
            .await
            .with_context(|| format!("importing PINs into {value}"))?;
        imported += batch;
    }
    Ok(())
}

/// Makes the main tenant's coupons and products (`pin_stocks` PINs each) and tops its credits up.
pub async fn create(
    channel: &Channel,
    token: &str,
    pin_stocks: &[usize],
) -> anyhow::Result<Fixture> {
    let started = Instant::now();
    let validate_code = "VALIDATE-10".to_owned();
    let apply_codes = apply_codes();
    let redeem_codes: Vec<String> = (0..REDEEM_COUPONS).map(|i| format!("RDM-{i:03}")).collect();
    let hot_code = "HOT".to_owned();
    let mut coupons = vec![coupon(validate_code.clone(), fixed(1_000))];
    coupons.extend(apply_coupons(&apply_codes));
    coupons.push(limited(coupon(hot_code.clone(), fixed(100))));
    coupons.extend(
        redeem_codes
            .iter()
            .map(|code| limited(coupon(code.clone(), fixed(100)))),
    );
    create_coupons(channel, token, coupons).await?;

    let mut products = Vec::new();
    for &stock in pin_stocks {
        let value = format!("bench-{stock}");
        create_product(channel, token, &value, stock).await?;
        products.push((value, PRODUCT_PRICE, stock));
    }
    admin(channel, token)?
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: 1_000_000_000_000,
            reference: "bench-top-up".to_owned(),
            note: "benchmark credits".to_owned(),
        })
        .await
        .context("topping up credits")?;
    Ok(Fixture {
        validate_code,
        apply_codes,
        redeem_codes,
        hot_code,
        products,
        setup_time: started.elapsed(),
    })
}

/// Automatic promotions of the automatic-promotion tenant, and how many of them match the Apply
/// cart.
pub const AUTOMATIC_PROMOTIONS: usize = 200;
pub const AUTOMATIC_MATCHING: usize = 2;

/// Codes of the two stackable coupons Apply names.
pub fn apply_codes() -> Vec<String> {
    vec!["STACK-PCT".to_owned(), "STACK-FIXED".to_owned()]
}

/// The two stackable coupons Apply names.
fn apply_coupons(apply_codes: &[String]) -> Vec<pb::Coupon> {
    vec![
        pb::Coupon {
            stacking: Some(pb::Stacking {
                stackable: true,
                priority: 1,
                ..Default::default()
            }),
            ..coupon(
                apply_codes[0].clone(),
                pb::discount::Kind::Percentage(pb::Percentage {
                    basis_points: 1_000,
                    max_discount: Some(50_000),
                }),
            )
        },
        pb::Coupon {
            stacking: Some(pb::Stacking {
                stackable: true,
                priority: 2,
                ..Default::default()
            }),
            ..coupon(apply_codes[1].clone(), fixed(2_000))
        },
    ]
}

/// Makes, for the automatic-promotion tenant, Apply's two codes and `count` automatic
/// promotions, stackable with them, of which [`AUTOMATIC_MATCHING`] apply to the Apply cart and
/// the rest cannot: a third target a channel the cart does not use, a third a category it does
/// not hold, a third another currency.
pub async fn create_automatic(
    channel: &Channel,
    token: &str,
    apply_codes: &[String],
    count: usize,
) -> anyhow::Result<()> {
    let mut coupons = apply_coupons(apply_codes);
    coupons.extend((0..count).map(|i| {
        let mut c = pb::Coupon {
            automatic: true,
            stacking: Some(pb::Stacking {
                stackable: true,
                ..Default::default()
            }),
            ..coupon(format!("AUTO-{i:04}"), fixed(100))
        };
        if i < AUTOMATIC_MATCHING {
            c.target = Some(pb::Target {
                categories: vec!["shoes".to_owned()],
                ..Default::default()
            });
            return c;
        }
        match i % 3 {
            0 => {
                c.conditions = Some(pb::Conditions {
                    channels: vec![format!("kiosk-{i}")],
                    ..Default::default()
                })
            }
            1 => {
                c.target = Some(pb::Target {
                    categories: vec![format!("aisle-{i}")],
                    ..Default::default()
                })
            }
            _ => c.currency = "USD".to_owned(),
        }
        c
    }));
    create_coupons(channel, token, coupons).await
}

/// Makes `count` coupons for ListApplicable's tenant: a mix that applies to its cart, that misses
/// it by a little (near misses) and that targets other channels or categories.
pub async fn create_catalogue(channel: &Channel, token: &str, count: usize) -> anyhow::Result<()> {
    let coupons = (0..count)
        .map(|i| {
            let mut c = coupon(format!("LIST-{i:04}"), fixed(100 + (i as i64 % 50) * 10));
            let mut conditions = pb::Conditions {
                // Carts of the scenario are worth about 100 000: a quarter of these miss it.
                min_subtotal: (i as i64 % 8) * 20_000,
                ..Default::default()
            };
            match i % 4 {
                0 => conditions.channels = vec!["app".to_owned()],
                1 => {
                    c.target = Some(pb::Target {
                        categories: vec!["shirts".to_owned()],
                        ..Default::default()
                    })
                }
                _ => {}
            }
            c.conditions = Some(conditions);
            c
        })
        .collect();
    create_coupons(channel, token, coupons).await
}
