//! The field types of the Parquet structures a footer and a page header hold, as polars
//! (0.55) decodes them: by field id, whatever type the file declares. `parquet_bounds` checks
//! every footer and page header against these before reading values from them, so that what
//! it checks is what polars will read. Fields polars does not decode are skipped by both.

use super::thrift_compact::Ty::{self, Binary, Bool, List, Struct, I32, I64, I8};

const EMPTY: &[(i16, Ty)] = &[];

const TIME_UNIT: &[(i16, Ty)] = &[(1, Struct(EMPTY)), (2, Struct(EMPTY)), (3, Struct(EMPTY))];
const TIME_TYPE: &[(i16, Ty)] = &[(1, Bool), (2, Struct(TIME_UNIT))];

const LOGICAL_TYPE: &[(i16, Ty)] = &[
    (1, Struct(EMPTY)),
    (2, Struct(EMPTY)),
    (3, Struct(EMPTY)),
    (4, Struct(EMPTY)),
    (5, Struct(&[(1, I32), (2, I32)])),
    (6, Struct(EMPTY)),
    (7, Struct(TIME_TYPE)),
    (8, Struct(TIME_TYPE)),
    (10, Struct(&[(1, I8), (2, Bool)])),
    (11, Struct(EMPTY)),
    (12, Struct(EMPTY)),
    (13, Struct(EMPTY)),
    (14, Struct(EMPTY)),
    (15, Struct(EMPTY)),
];

const SCHEMA_ELEMENT: &[(i16, Ty)] = &[
    (1, I32),
    (2, I32),
    (3, I32),
    (4, Binary),
    (5, I32),
    (6, I32),
    (7, I32),
    (8, I32),
    (9, I32),
    (10, Struct(LOGICAL_TYPE)),
];

const STATISTICS: &[(i16, Ty)] = &[
    (1, Binary),
    (2, Binary),
    (3, I64),
    (4, I64),
    (5, Binary),
    (6, Binary),
    (7, Bool),
    (8, Bool),
];

const COLUMN_META_DATA: &[(i16, Ty)] = &[
    (1, I32),
    (2, List(&I32)),
    (3, List(&Binary)),
    (4, I32),
    (5, I64),
    (6, I64),
    (7, I64),
    (9, I64),
    (10, I64),
    (11, I64),
    (12, Struct(STATISTICS)),
    (14, I64),
    (15, I32),
];

const COLUMN_CHUNK: &[(i16, Ty)] = &[
    (1, Binary),
    (2, I64),
    (3, Struct(COLUMN_META_DATA)),
    (4, I64),
    (5, I32),
    (6, I64),
    (7, I32),
];

const SORTING_COLUMN: &[(i16, Ty)] = &[(1, I32), (2, Bool), (3, Bool)];

const ROW_GROUP: &[(i16, Ty)] = &[
    (1, List(&Struct(COLUMN_CHUNK))),
    (2, I64),
    (3, I64),
    (4, List(&Struct(SORTING_COLUMN))),
    (5, I64),
    (6, I64),
    (7, Ty::I16),
];

const KEY_VALUE: &[(i16, Ty)] = &[(1, Binary), (2, Binary)];

/// FileMetaData, the footer.
pub const FILE_META_DATA: &[(i16, Ty)] = &[
    (1, I32),
    (2, List(&Struct(SCHEMA_ELEMENT))),
    (3, I64),
    (4, List(&Struct(ROW_GROUP))),
    (5, List(&Struct(KEY_VALUE))),
    (6, Binary),
    (7, List(&Struct(&[(1, Struct(EMPTY)), (2, Struct(EMPTY))]))),
];

const DATA_PAGE_HEADER: &[(i16, Ty)] = &[
    (1, I32),
    (2, I32),
    (3, I32),
    (4, I32),
    (5, Struct(STATISTICS)),
];

const DICTIONARY_PAGE_HEADER: &[(i16, Ty)] = &[(1, I32), (2, I32), (3, Bool)];

const DATA_PAGE_HEADER_V2: &[(i16, Ty)] = &[
    (1, I32),
    (2, I32),
    (3, I32),
    (4, I32),
    (5, I32),
    (6, I32),
    (7, Bool),
    (8, Struct(STATISTICS)),
];

/// PageHeader, before each page.
pub const PAGE_HEADER: &[(i16, Ty)] = &[
    (1, I32),
    (2, I32),
    (3, I32),
    (4, I32),
    (5, Struct(DATA_PAGE_HEADER)),
    (6, Struct(EMPTY)),
    (7, Struct(DICTIONARY_PAGE_HEADER)),
    (8, Struct(DATA_PAGE_HEADER_V2)),
];
