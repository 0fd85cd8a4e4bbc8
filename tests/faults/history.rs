//! A mixed load of Redeem, Confirm, Revert and Purchase whose every call is retried with the
//! same key until it gets a definite answer, and a checker that verifies what the callers were
//! told against what the database holds.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use coupon_service::pb;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement, Value};
use tonic::{transport::Channel, Code, Status};

use crate::{
    common::{Auth, TestApp},
    findings::{coupon, create, fixed},
};

/// The limited coupon every flow tries to redeem.
pub const CODE: &str = "FAULTS";
/// Its total limit: fewer than the flows, so the limit is exercised too.
pub const COUPON_LIMIT: i64 = 25;
/// PINs in stock: fewer than the flows buying.
pub const STOCK: usize = 30;
/// Price of one PIN.
const PRICE: i64 = 100;

/// Where calls go: the servers still alive. A test removes one it kills and adds one it starts.
#[derive(Clone, Default)]
pub struct Targets(Arc<Mutex<Vec<Channel>>>);

impl Targets {
    pub fn new(channels: Vec<Channel>) -> Self {
        Self(Arc::new(Mutex::new(channels)))
    }

    fn pick(&self, n: usize) -> Channel {
        let channels = self.0.lock().unwrap();
        channels[n % channels.len()].clone()
    }

    /// Replaces the channel at `index` (a killed server) with `channel`.
    pub fn replace(&self, index: usize, channel: Channel) {
        self.0.lock().unwrap()[index] = channel;
    }
}

/// What every call was finally answered, and every status seen on the way.
#[derive(Default)]
pub struct History {
    /// Order id -> redemption id, for each Redeem answered OK.
    pub redeemed: HashMap<String, String>,
    /// Order id -> "completed" or "reverted": the last Confirm or Revert answered OK.
    pub settled: HashMap<String, &'static str>,
    /// Reference -> (purchase id, PIN), for each Purchase answered OK.
    pub purchased: HashMap<String, (String, String)>,
    /// Every status other than OK that any attempt got.
    pub seen: Vec<Status>,
}

/// How one attempt of a call is made.
pub struct Policy {
    /// The deadline every attempt carries.
    pub deadline: Duration,
    /// Whether this status is a definite answer (stop retrying) or unanswered (retry).
    pub definite: fn(&Status) -> bool,
}

/// Answers that say what happened; anything else is retried with the same key.
pub fn definite(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::FailedPrecondition | Code::InvalidArgument | Code::NotFound | Code::AlreadyExists
    )
}

/// Prepares the coupon, the product and its stock, and the credits the load uses.
pub async fn prepare(app: &TestApp) {
    create(
        app,
        coupon(
            CODE,
            fixed(1_000),
            pb::Limits {
                max_redemptions: Some(COUPON_LIMIT),
                ..Default::default()
            },
        ),
    )
    .await;
    let mut admin = app.admin(&app.token);
    let product = admin
        .create_product(pb::CreateProductRequest {
            product: Some(pb::Product {
                name: "Load".into(),
                value: "load".into(),
                amount: PRICE,
                currency: "NPR".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    admin
        .import_pins(pb::ImportPinsRequest {
            product_idx: product.idx,
            pins: (0..STOCK)
                .map(|n| pb::PinInput {
                    pin: format!("LOAD-PIN-{n:04}"),
                    ..Default::default()
                })
                .collect(),
        })
        .await
        .unwrap();
    admin
        .top_up_credits(pb::TopUpCreditsRequest {
            amount: PRICE * (STOCK as i64 + 10),
            reference: "load-credits".into(),
            note: String::new(),
        })
        .await
        .unwrap();
}

/// Runs `flows` customer flows, `concurrency` at a time: Redeem pending, then Confirm (even
/// flows) or Revert (odd ones), then Purchase. `answered` counts calls answered, so a test can
/// strike mid-load.
pub async fn run(
    targets: Targets,
    token: String,
    flows: usize,
    concurrency: usize,
    policy: Arc<Policy>,
    answered: Arc<AtomicUsize>,
) -> History {
    let history = Arc::new(Mutex::new(History::default()));
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (targets, token, policy) = (targets.clone(), token.clone(), policy.clone());
            let (history, next, answered) = (history.clone(), next.clone(), answered.clone());
            tokio::spawn(async move {
                loop {
                    let flow = next.fetch_add(1, Ordering::Relaxed);
                    if flow >= flows {
                        return;
                    }
                    let call = Caller {
                        targets: targets.clone(),
                        token: token.clone(),
                        policy: policy.clone(),
                        history: history.clone(),
                        answered: answered.clone(),
                        first_target: flow,
                    };
                    call.flow(flow).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a flow panicked");
    }
    Arc::try_unwrap(history)
        .unwrap_or_else(|_| panic!("flows still running"))
        .into_inner()
        .unwrap()
}

struct Caller {
    targets: Targets,
    token: String,
    policy: Arc<Policy>,
    history: Arc<Mutex<History>>,
    answered: Arc<AtomicUsize>,
    /// Spreads flows over the servers; each retry goes to the next one.
    first_target: usize,
}

/// Most attempts of one call: every retry goes to the next live server.
const MAX_ATTEMPTS: usize = 400;

impl Caller {
    async fn flow(&self, flow: usize) {
        let order_id = format!("order-{flow}");
        let redeemed = self
            .retry(|channel, auth| {
                let order_id = order_id.clone();
                async move {
                    pb::coupon_service_client::CouponServiceClient::with_interceptor(channel, auth)
                        .redeem(redeem_request(&order_id, flow))
                        .await
                        .map(|r| r.into_inner().redemptions[0].id.clone())
                }
            })
            .await;
        if let Some(id) = redeemed {
            self.history
                .lock()
                .unwrap()
                .redeemed
                .insert(order_id.clone(), id);
            let revert = flow % 2 == 1;
            let settled = self
                .retry(|channel, auth| {
                    let order_id = order_id.clone();
                    async move {
                        let mut client =
                            pb::coupon_service_client::CouponServiceClient::with_interceptor(
                                channel, auth,
                            );
                        if revert {
                            client
                                .revert(pb::RevertRequest {
                                    order_id,
                                    codes: vec![],
                                    reason: "payment failed".into(),
                                })
                                .await
                                .map(drop)
                        } else {
                            client
                                .confirm(pb::ConfirmRequest {
                                    order_id,
                                    codes: vec![],
                                })
                                .await
                                .map(drop)
                        }
                    }
                })
                .await;
            if settled.is_some() {
                self.history.lock().unwrap().settled.insert(
                    order_id.clone(),
                    if revert { "reverted" } else { "completed" },
                );
            }
        }
        let reference = format!("ref-{flow}");
        let bought = self
            .retry(|channel, auth| {
                let reference = reference.clone();
                async move {
                    pb::voucher_service_client::VoucherServiceClient::with_interceptor(
                        channel, auth,
                    )
                    .purchase(pb::PurchaseRequest {
                        reference,
                        value: "load".into(),
                        amount: PRICE,
                        phone_number: "9800000000".into(),
                        email: "buyer@example.com".into(),
                        name: "Buyer".into(),
                    })
                    .await
                    .map(|r| {
                        let purchase = r.into_inner().purchase.unwrap_or_default();
                        (purchase.id, purchase.pin)
                    })
                }
            })
            .await;
        if let Some(sale) = bought {
            self.history
                .lock()
                .unwrap()
                .purchased
                .insert(reference, sale);
        }
    }

    /// Makes the call until it is answered definitely; `Some` when it was answered OK.
    async fn retry<T, F, Fut>(&self, call: F) -> Option<T>
    where
        F: Fn(Channel, Auth) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        for attempt in 0..MAX_ATTEMPTS {
            let channel = self.targets.pick(self.first_target + attempt);
            let auth = Auth::bearer(&self.token).with_timeout(self.policy.deadline);
            // The caller gives up at its deadline: an answer after it counts as none.
            let answer = tokio::time::timeout(self.policy.deadline, call(channel, auth))
                .await
                .unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer by the deadline")));
            self.answered.fetch_add(1, Ordering::Relaxed);
            match answer {
                Ok(value) => return Some(value),
                Err(status) => {
                    let done = (self.policy.definite)(&status);
                    self.history.lock().unwrap().seen.push(status);
                    if done {
                        return None;
                    }
                }
            }
            // Back off a little before the retry, as a real client would.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("a call was never answered in {MAX_ATTEMPTS} attempts");
    }
}

fn redeem_request(order_id: &str, flow: usize) -> pb::RedeemRequest {
    pb::RedeemRequest {
        codes: vec![CODE.into()],
        order_id: order_id.into(),
        order_status: pb::OrderStatus::Pending as i32,
        checkout: Some(pb::Checkout {
            cart: Some(pb::Cart {
                currency: "INR".into(),
                items: vec![pb::LineItem {
                    product_id: "SKU-1".into(),
                    unit_price: Some(5_000),
                    quantity: 1,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            customer: Some(pb::Customer {
                id: format!("customer-{flow}"),
                ..Default::default()
            }),
            ..Default::default()
        }),
        reservation_ttl: None,
    }
}

/// Checks the database against what callers were told.
pub async fn check(database_url: &str, history: &History) {
    let db = Database::connect(database_url).await.unwrap();
    for status in &history.seen {
        assert_ne!(status.code(), Code::Internal, "never INTERNAL: {status:?}");
    }

    // Every OK Redeem has exactly one ledger row, in the state its last answer said.
    for (order_id, id) in &history.redeemed {
        let rows = query(
            &db,
            "SELECT status FROM redemptions WHERE id = $1",
            [id.clone()],
        )
        .await;
        assert_eq!(rows.len(), 1, "one ledger row for {order_id}");
        let status: String = rows[0].try_get("", "status").unwrap();
        let expected = history.settled.get(order_id).copied().unwrap_or("pending");
        assert_eq!(status, expected, "{order_id} is as its last answer said");
    }
    // Nothing exists twice: one redemption per order, one purchase per reference.
    let twice = query(
        &db,
        "SELECT order_id FROM redemptions GROUP BY tenant_id, order_id, coupon_id \
         HAVING COUNT(*) > 1",
        [],
    )
    .await;
    assert!(twice.is_empty(), "an order redeemed twice");
    let rows = query(&db, "SELECT id FROM redemptions", []).await;
    assert_eq!(
        rows.len(),
        history.redeemed.len(),
        "every ledger row was answered OK to some caller"
    );
    let twice = query(
        &db,
        "SELECT reference FROM purchases GROUP BY tenant_id, reference HAVING COUNT(*) > 1",
        [],
    )
    .await;
    assert!(twice.is_empty(), "a reference bought twice");

    // The counter equals the active redemptions of the counted coupon, never above its limit.
    let counters = query(
        &db,
        "SELECT c.redemptions, \
           (SELECT COUNT(*) FROM redemptions r WHERE r.coupon_id = c.id AND r.counted \
              AND r.status IN ('pending', 'completed')) AS active \
         FROM coupons c",
        [],
    )
    .await;
    for row in counters {
        let used: i64 = row.try_get("", "redemptions").unwrap();
        let active: i64 = row.try_get("", "active").unwrap();
        assert_eq!(used, active, "the counter equals active redemptions");
        assert!(used <= COUPON_LIMIT, "never above the limit");
    }

    // Credits equal the credit ledger's sum; each OK purchase debited once.
    let balances = query(
        &db,
        "SELECT b.balance, b.consumed, \
           (SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) FROM credit_entries e \
              WHERE e.tenant_id = b.tenant_id) AS ledger \
         FROM credit_balances b",
        [],
    )
    .await;
    for row in balances {
        let balance: i64 = row.try_get("", "balance").unwrap();
        let consumed: i64 = row.try_get("", "consumed").unwrap();
        let ledger: i64 = row.try_get("", "ledger").unwrap();
        assert_eq!(balance, ledger, "the balance equals the ledger's sum");
        assert_eq!(consumed, PRICE * history.purchased.len() as i64);
    }
    for (reference, (id, pin)) in &history.purchased {
        let rows = query(
            &db,
            "SELECT pin_id FROM purchases WHERE id = $1",
            [id.clone()],
        )
        .await;
        assert_eq!(rows.len(), 1, "one purchase row for {reference}");
        let debits = query(
            &db,
            "SELECT id FROM credit_entries WHERE reference = $1",
            [id.clone()],
        )
        .await;
        assert_eq!(debits.len(), 1, "one debit for {reference}");
        assert!(pin.starts_with("LOAD-PIN-"), "{reference} got a PIN");
    }
    let purchases = query(&db, "SELECT id FROM purchases", []).await;
    assert_eq!(
        purchases.len(),
        history.purchased.len(),
        "every sale was answered OK"
    );
    assert!(purchases.len() <= STOCK, "never beyond stock");
    let pins: Vec<&String> = history.purchased.values().map(|(_, pin)| pin).collect();
    let distinct: std::collections::HashSet<&&String> = pins.iter().collect();
    assert_eq!(distinct.len(), pins.len(), "no PIN sold twice");
    let sold_twice = query(
        &db,
        "SELECT pin_id FROM purchases GROUP BY pin_id HAVING COUNT(*) > 1",
        [],
    )
    .await;
    assert!(sold_twice.is_empty(), "no PIN row sold twice");
    db.close().await.ok();
}

async fn query<const N: usize>(
    db: &DatabaseConnection,
    sql: &str,
    values: [String; N],
) -> Vec<sea_orm::QueryResult> {
    let backend = db.get_database_backend();
    // SQLite takes `$1` placeholders too.
    let values: Vec<Value> = values.into_iter().map(Value::from).collect();
    db.query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap()
}
