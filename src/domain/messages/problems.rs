//! What a `google.rpc.BadRequest` field violation says, in English and Indonesian. The field
//! path is not part of the text: it stays in proto names in every language.

use super::{format_amount, Locale};
use crate::domain::{code::CodeError, code::MAX_CODE_LEN, problem::Problem};

/// The description of `problem`, written for `locale`.
pub fn problem_message(problem: &Problem, locale: Locale) -> String {
    use Problem::*;
    match locale {
        Locale::En => match problem {
            Required => "is required".into(),
            IdOrCodeRequired => "an id or a code is required".into(),
            UpdateMaskRequired => "is required: name the fields to change".into(),
            DiscountRequired => "is required: one of fixed_amount, percentage, free_shipping, \
                                 buy_get, exclusive_price, tiered"
                .into(),
            UnitPriceRequired => "is required (send 0 for a free item)".into(),
            CustomerIdRequired => "is required: anonymous customers cannot redeem".into(),
            ScopesRequired => "name at least one scope".into(),
            TierBasisRequired => "is required: TIER_BASIS_SPEND or TIER_BASIS_QUANTITY".into(),
            TierRewardRequired => {
                "a reward is required: one of basis_points, amount, free_units".into()
            }
            TiersRequired => "at least one tier is required".into(),
            TooManyTiers { max } => format!("at most {max} tiers"),
            ThresholdNotAboveLowerTier => {
                "must be greater than the previous tier's threshold".into()
            }
            TierRewardKindDiffers => {
                "every tier must give the same kind of reward as the first".into()
            }
            RewardNotAboveLowerTier => {
                "must be greater than the previous tier's, so a higher tier gives more".into()
            }
            TooManyAutomaticKeys { max } => format!(
                "an automatic promotion may name at most {max} combinations of channel and \
                 product, SKU or category"
            ),
            NotADate => "is not a date: use YYYY-MM-DD".into(),
            StartAfterEnd => "must not be after end_date".into(),
            RangeTooLong { max } => format!("the range may span at most {max} days"),
            TooLong { max } => format!("must be at most {max} characters"),
            RequiredUpTo { max } => format!("is required, at most {max} characters"),
            ContainsNul => "must not contain NUL characters".into(),
            NotPrintableAscii => "must be printable ASCII".into(),
            Negative => "must not be negative".into(),
            NotPositive => "must be greater than zero".into(),
            NotPositiveWhenSet => "must be greater than zero when set".into(),
            AtLeast { min } => format!("must be at least {min}"),
            AtLeastWhenSet { min } => format!("must be at least {min} when set"),
            OutOfRange { min, max } => format!("must be from {min} to {max}"),
            NegativeOrTooLarge => "must not be negative or absurdly large".into(),
            PercentageOutOfRange => "must be from 1 to 10000 (0.01% to 100%)".into(),
            QuotaOutOfRange { max } => {
                format!("must be between 1 and {max}, or 0 for the service default")
            }
            AboveServiceDefault { default } => format!(
                "must be at most the service default {default}; the operator raises it with \
                 `coupon-service tenant quota`"
            ),
            CodeCount { min: 0, max } => format!("name at most {max} codes"),
            CodeCount { min, max } => format!("name {min} to {max} codes"),
            PinCount { min, max } => format!("send {min} to {max} PINs per call"),
            TooManyLines { max } => format!("at most {max} lines"),
            TooManyOrderTypes { max } => format!("at most {max} order types"),
            TotalQuantityTooLarge => "the cart's total quantity is too large".into(),
            LineTotalTooLarge => "price times quantity is too large".into(),
            NotATimestamp => "is not a valid timestamp".into(),
            NotInFuture => "must be in the future".into(),
            EndNotAfterStart => "end time must be after start time".into(),
            ReservationTtlOutOfRange => "must be from 1s to 7 days".into(),
            GracePeriodOutOfRange => "must be from 0 to 30 days".into(),
            UnknownValue => "unknown value".into(),
            UnknownCustomerSegment => "unknown customer segment".into(),
            UnknownEventKind => "unknown event kind".into(),
            UnknownOperator => {
                "unknown predicate operator: use EQ, NE, GT, GTE, LT, LTE, IN or CONTAINS".into()
            }
            UnknownOrderStatus => "must be ORDER_STATUS_PENDING or ORDER_STATUS_COMPLETED".into(),
            NamedTwice => "is named twice".into(),
            NotUpdatable { path, allowed } => {
                format!("cannot update {path:?}; allowed: {}", allowed.join(", "))
            }
            CurrencyRequiredForAmounts => {
                "a currency is required when the coupon states amounts".into()
            }
            ListedSegmentEmpty => "a LISTED segment needs customer ids, e-mails or phones".into(),
            MetadataKeyMissing => "name a metadata key after \"metadata.\"".into(),
            WrongValueCount => {
                "IN takes one or more values, every other operator exactly one".into()
            }
            CharsetTooSmall { min } => format!("needs at least {min} distinct letters or digits"),
            BadPrefixCharacter => "may contain only letters, digits, '-' and '_'".into(),
            PatternTooLong { max } => {
                format!("prefix and length together exceed {max} characters")
            }
            PatternTooShortForCount => {
                "the campaign's code pattern is too short for that many unique codes".into()
            }
            NotASlug { max } => format!("must be 1 to {max} of a-z, 0-9, '-' and '_'"),
            // Worded as voucher_service.proto documents it.
            UnknownProduct => "Invalid value for product".into(),
            AmountNotPrice { price, currency } => format!(
                "enter valid amount: it must equal the product's price, {}",
                format_amount(*price, *currency, locale)
            ),
            ProductWithoutCurrency => "the product has no currency".into(),
            PinNotSealable => "a PIN could not be sealed".into(),
            UnknownPageToken => "is not a token from this listing".into(),
            UnknownCursor => "is not a cursor from this stream".into(),
            Unstorable => "contains a value that cannot be stored".into(),
            Code(CodeError::Empty) => "code is empty".into(),
            Code(CodeError::TooLong) => format!("code is longer than {MAX_CODE_LEN} characters"),
            Code(CodeError::BadCharacter) => {
                "code may contain only letters A-Z, digits, '-' and '_'".into()
            }
            UnknownCurrency { code } => format!("{code:?} is not an ISO-4217 currency code"),
            UnknownScope { scope } => {
                format!("unknown scope {scope:?}: expected read, redeem, purchase or admin")
            }
        },
        Locale::Id => match problem {
            Required => "wajib diisi".into(),
            IdOrCodeRequired => "id atau kode wajib diisi".into(),
            UpdateMaskRequired => "wajib diisi: sebutkan kolom yang akan diubah".into(),
            DiscountRequired => "wajib diisi: salah satu dari fixed_amount, percentage, \
                                 free_shipping, buy_get, exclusive_price, tiered"
                .into(),
            UnitPriceRequired => "wajib diisi (kirim 0 untuk barang gratis)".into(),
            CustomerIdRequired => {
                "wajib diisi: pelanggan anonim tidak dapat memakai kode diskon".into()
            }
            ScopesRequired => "sebutkan paling sedikit satu cakupan".into(),
            TierBasisRequired => "wajib diisi: TIER_BASIS_SPEND atau TIER_BASIS_QUANTITY".into(),
            TierRewardRequired => {
                "hadiah wajib diisi: salah satu dari basis_points, amount, free_units".into()
            }
            TiersRequired => "paling sedikit satu tingkat wajib diisi".into(),
            TooManyTiers { max } => format!("paling banyak {max} tingkat"),
            ThresholdNotAboveLowerTier => "harus lebih besar dari ambang tingkat sebelumnya".into(),
            TierRewardKindDiffers => {
                "setiap tingkat harus memberi jenis hadiah yang sama dengan tingkat pertama".into()
            }
            RewardNotAboveLowerTier => {
                "harus lebih besar dari hadiah tingkat sebelumnya, agar tingkat lebih tinggi \
                 memberi lebih banyak"
                    .into()
            }
            TooManyAutomaticKeys { max } => format!(
                "promosi otomatis paling banyak menyebut {max} kombinasi kanal dan produk, SKU \
                 atau kategori"
            ),
            NotADate => "bukan tanggal: gunakan YYYY-MM-DD".into(),
            StartAfterEnd => "tidak boleh setelah end_date".into(),
            RangeTooLong { max } => format!("rentang paling panjang {max} hari"),
            TooLong { max } => format!("paling banyak {max} karakter"),
            RequiredUpTo { max } => format!("wajib diisi, paling banyak {max} karakter"),
            ContainsNul => "tidak boleh berisi karakter NUL".into(),
            NotPrintableAscii => "harus berupa karakter ASCII yang dapat dicetak".into(),
            Negative => "tidak boleh negatif".into(),
            NotPositive => "harus positif".into(),
            NotPositiveWhenSet => "harus positif bila diisi".into(),
            AtLeast { min } => format!("paling sedikit {min}"),
            AtLeastWhenSet { min } => format!("paling sedikit {min} bila diisi"),
            OutOfRange { min, max } => format!("harus antara {min} dan {max}"),
            NegativeOrTooLarge => "tidak boleh negatif atau terlalu besar".into(),
            PercentageOutOfRange => "harus antara 1 dan 10000 (0,01% sampai 100%)".into(),
            QuotaOutOfRange { max } => {
                format!("harus antara 1 dan {max}, atau 0 untuk nilai bawaan layanan")
            }
            AboveServiceDefault { default } => format!(
                "paling banyak sebesar nilai bawaan layanan, {default}; operator dapat \
                 menaikkannya dengan `coupon-service tenant quota`"
            ),
            CodeCount { min: 0, max } => format!("sebutkan paling banyak {max} kode"),
            CodeCount { min, max } => format!("sebutkan {min} sampai {max} kode"),
            PinCount { min, max } => format!("kirim {min} sampai {max} PIN per panggilan"),
            TooManyLines { max } => format!("paling banyak {max} baris"),
            TooManyOrderTypes { max } => format!("paling banyak {max} jenis pesanan"),
            TotalQuantityTooLarge => "jumlah total barang di keranjang terlalu besar".into(),
            LineTotalTooLarge => "harga dikali jumlah terlalu besar".into(),
            NotATimestamp => "bukan cap waktu yang valid".into(),
            NotInFuture => "harus di masa mendatang".into(),
            EndNotAfterStart => "waktu berakhir harus setelah waktu mulai".into(),
            ReservationTtlOutOfRange => "harus antara 1 detik dan 7 hari".into(),
            GracePeriodOutOfRange => "harus antara 0 dan 30 hari".into(),
            UnknownValue => "nilai tidak dikenal".into(),
            UnknownCustomerSegment => "segmen pelanggan tidak dikenal".into(),
            UnknownEventKind => "jenis peristiwa tidak dikenal".into(),
            UnknownOperator => "operator predikat tidak dikenal: gunakan EQ, NE, GT, GTE, LT, \
                                LTE, IN atau CONTAINS"
                .into(),
            UnknownOrderStatus => "harus ORDER_STATUS_PENDING atau ORDER_STATUS_COMPLETED".into(),
            NamedTwice => "disebut dua kali".into(),
            NotUpdatable { path, allowed } => format!(
                "{path:?} tidak dapat diubah; yang dapat diubah: {}",
                allowed.join(", ")
            ),
            CurrencyRequiredForAmounts => {
                "mata uang wajib diisi bila kode diskon menyebutkan nominal".into()
            }
            ListedSegmentEmpty => {
                "segmen LISTED memerlukan id, e-mail, atau nomor telepon pelanggan".into()
            }
            MetadataKeyMissing => "sebutkan kunci metadata setelah \"metadata.\"".into(),
            WrongValueCount => {
                "IN memerlukan satu nilai atau lebih, operator lain tepat satu nilai".into()
            }
            CharsetTooSmall { min } => {
                format!("memerlukan paling sedikit {min} huruf atau angka yang berbeda")
            }
            BadPrefixCharacter => "hanya boleh berisi huruf, angka, '-' dan '_'".into(),
            PatternTooLong { max } => {
                format!("awalan dan panjang kode bersama-sama melebihi {max} karakter")
            }
            PatternTooShortForCount => {
                "pola kode kampanye terlalu pendek untuk kode unik sebanyak itu".into()
            }
            NotASlug { max } => format!("harus 1 sampai {max} karakter a-z, 0-9, '-' dan '_'"),
            UnknownProduct => "Nilai produk tidak valid".into(),
            AmountNotPrice { price, currency } => format!(
                "masukkan jumlah yang valid: harus sama dengan harga produk, {}",
                format_amount(*price, *currency, locale)
            ),
            ProductWithoutCurrency => "produk ini tidak memiliki mata uang".into(),
            PinNotSealable => "sebuah PIN tidak dapat dienkripsi".into(),
            UnknownPageToken => "bukan token dari daftar ini".into(),
            UnknownCursor => "bukan kursor dari aliran ini".into(),
            Unstorable => "berisi nilai yang tidak dapat disimpan".into(),
            Code(CodeError::Empty) => "kode kosong".into(),
            Code(CodeError::TooLong) => format!("kode lebih dari {MAX_CODE_LEN} karakter"),
            Code(CodeError::BadCharacter) => {
                "kode hanya boleh berisi huruf A-Z, angka, '-' dan '_'".into()
            }
            UnknownCurrency { code } => format!("{code:?} bukan kode mata uang ISO-4217"),
            UnknownScope { scope } => format!(
                "cakupan {scope:?} tidak dikenal: gunakan read, redeem, purchase atau admin"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;
    use crate::domain::{problem::ProblemKind, Currency};

    /// Every problem, with each shape of parameters its text depends on. The match has no
    /// wildcard, so a new problem fails to compile here until it is given examples.
    fn examples(kind: ProblemKind) -> Vec<Problem> {
        use Problem::*;
        let idr = Currency::parse("IDR").expect("a currency");
        match kind {
            ProblemKind::Required => vec![Required],
            ProblemKind::IdOrCodeRequired => vec![IdOrCodeRequired],
            ProblemKind::UpdateMaskRequired => vec![UpdateMaskRequired],
            ProblemKind::DiscountRequired => vec![DiscountRequired],
            ProblemKind::UnitPriceRequired => vec![UnitPriceRequired],
            ProblemKind::CustomerIdRequired => vec![CustomerIdRequired],
            ProblemKind::ScopesRequired => vec![ScopesRequired],
            ProblemKind::TierBasisRequired => vec![TierBasisRequired],
            ProblemKind::TierRewardRequired => vec![TierRewardRequired],
            ProblemKind::TiersRequired => vec![TiersRequired],
            ProblemKind::TooManyTiers => vec![TooManyTiers { max: 20 }],
            ProblemKind::ThresholdNotAboveLowerTier => vec![ThresholdNotAboveLowerTier],
            ProblemKind::TierRewardKindDiffers => vec![TierRewardKindDiffers],
            ProblemKind::RewardNotAboveLowerTier => vec![RewardNotAboveLowerTier],
            ProblemKind::TooManyAutomaticKeys => vec![TooManyAutomaticKeys { max: 1_000 }],
            ProblemKind::NotADate => vec![NotADate],
            ProblemKind::StartAfterEnd => vec![StartAfterEnd],
            ProblemKind::RangeTooLong => vec![RangeTooLong { max: 366 }],
            ProblemKind::TooLong => vec![TooLong { max: 64 }],
            ProblemKind::RequiredUpTo => vec![RequiredUpTo { max: 128 }],
            ProblemKind::ContainsNul => vec![ContainsNul],
            ProblemKind::NotPrintableAscii => vec![NotPrintableAscii],
            ProblemKind::Negative => vec![Negative],
            ProblemKind::NotPositive => vec![NotPositive],
            ProblemKind::NotPositiveWhenSet => vec![NotPositiveWhenSet],
            ProblemKind::AtLeast => vec![AtLeast { min: 1 }],
            ProblemKind::AtLeastWhenSet => vec![AtLeastWhenSet { min: 1 }],
            ProblemKind::OutOfRange => vec![OutOfRange { min: 6, max: 32 }],
            ProblemKind::NegativeOrTooLarge => vec![NegativeOrTooLarge],
            ProblemKind::PercentageOutOfRange => vec![PercentageOutOfRange],
            ProblemKind::QuotaOutOfRange => vec![QuotaOutOfRange { max: 86_400 }],
            ProblemKind::AboveServiceDefault => vec![AboveServiceDefault { default: 50 }],
            ProblemKind::CodeCount => {
                vec![CodeCount { min: 0, max: 20 }, CodeCount { min: 1, max: 20 }]
            }
            ProblemKind::PinCount => vec![PinCount {
                min: 1,
                max: 10_000,
            }],
            ProblemKind::TooManyLines => vec![TooManyLines { max: 1_000 }],
            ProblemKind::TooManyOrderTypes => vec![TooManyOrderTypes { max: 100 }],
            ProblemKind::TotalQuantityTooLarge => vec![TotalQuantityTooLarge],
            ProblemKind::LineTotalTooLarge => vec![LineTotalTooLarge],
            ProblemKind::NotATimestamp => vec![NotATimestamp],
            ProblemKind::NotInFuture => vec![NotInFuture],
            ProblemKind::EndNotAfterStart => vec![EndNotAfterStart],
            ProblemKind::ReservationTtlOutOfRange => vec![ReservationTtlOutOfRange],
            ProblemKind::GracePeriodOutOfRange => vec![GracePeriodOutOfRange],
            ProblemKind::UnknownValue => vec![UnknownValue],
            ProblemKind::UnknownCustomerSegment => vec![UnknownCustomerSegment],
            ProblemKind::UnknownEventKind => vec![UnknownEventKind],
            ProblemKind::UnknownOperator => vec![UnknownOperator],
            ProblemKind::UnknownOrderStatus => vec![UnknownOrderStatus],
            ProblemKind::NamedTwice => vec![NamedTwice],
            ProblemKind::NotUpdatable => vec![NotUpdatable {
                path: "limits".into(),
                allowed: vec!["description", "active"],
            }],
            ProblemKind::CurrencyRequiredForAmounts => vec![CurrencyRequiredForAmounts],
            ProblemKind::ListedSegmentEmpty => vec![ListedSegmentEmpty],
            ProblemKind::MetadataKeyMissing => vec![MetadataKeyMissing],
            ProblemKind::WrongValueCount => vec![WrongValueCount],
            ProblemKind::CharsetTooSmall => vec![CharsetTooSmall { min: 2 }],
            ProblemKind::BadPrefixCharacter => vec![BadPrefixCharacter],
            ProblemKind::PatternTooLong => vec![PatternTooLong { max: 64 }],
            ProblemKind::PatternTooShortForCount => vec![PatternTooShortForCount],
            ProblemKind::NotASlug => vec![NotASlug { max: 64 }],
            ProblemKind::UnknownProduct => vec![UnknownProduct],
            ProblemKind::AmountNotPrice => vec![AmountNotPrice {
                price: 5_000_000,
                currency: idr,
            }],
            ProblemKind::ProductWithoutCurrency => vec![ProductWithoutCurrency],
            ProblemKind::PinNotSealable => vec![PinNotSealable],
            ProblemKind::UnknownPageToken => vec![UnknownPageToken],
            ProblemKind::UnknownCursor => vec![UnknownCursor],
            ProblemKind::Unstorable => vec![Unstorable],
            ProblemKind::Code => CodeError::iter().map(Code).collect(),
            ProblemKind::UnknownCurrency => vec![UnknownCurrency { code: "XYZ".into() }],
            ProblemKind::UnknownScope => vec![UnknownScope {
                scope: "root".into(),
            }],
        }
    }

    #[test]
    fn every_problem_has_its_own_text_in_each_language() {
        for kind in ProblemKind::iter() {
            for problem in examples(kind) {
                let english = problem_message(&problem, Locale::En);
                let indonesian = problem_message(&problem, Locale::Id);
                assert!(
                    !english.trim().is_empty(),
                    "{problem:?} has no English text"
                );
                assert!(
                    !indonesian.trim().is_empty(),
                    "{problem:?} has no Indonesian text"
                );
                assert_ne!(english, indonesian, "{problem:?} is not translated");
            }
        }
    }

    #[test]
    fn writes_prices_the_local_way() {
        let price = Problem::AmountNotPrice {
            price: 5_000_000,
            currency: Currency::parse("IDR").expect("a currency"),
        };
        assert_eq!(
            problem_message(&price, Locale::Id),
            "masukkan jumlah yang valid: harus sama dengan harga produk, Rp 50.000"
        );
        assert_eq!(
            problem_message(&price, Locale::En),
            "enter valid amount: it must equal the product's price, Rp 50,000"
        );
    }
}
