"""Shared pieces of the benchmarks: realistic section mail in bulk, configs, measured subprocesses.

The mail: every message comes from a section's registered address (config.example.yaml) and
carries that section's real Annex 1 workbook (mailbot.duties.templates.template_bytes) filled the way
a clerk fills it: the section's main ledger with `rows` rows (政策法规科: the 双公示台账, with valid
统一社会信用代码 and decision/upload dates a few working days apart), its other ledgers that
may not stay empty with three rows, the cover's contact filled in. Sections and months vary,
so the store's lookups and supersession (same section, task and month sent again) are
exercised. A workbook is built once per (section, month); each message then gets its own copy
with one cell changed in place (a batch number in 备注 of the first row, edited inside the
xlsx's sheet XML), so every file has its own sha256 and generation stays fast.

A share of the messages (`bad_share`) has one wrong check character in one credit code (a
rejection naming sheet, row and cell); a share (`resend_share`) sends again, under a new
Message-ID, a file an earlier message carried. Messages are written in two layouts: Python's
email package (UTF-8, RFC 2231 file names) and Foxmail 7.2's (GB18030 RFC 2047 words inside the
quoted name parameter, multipart/alternative body).
"""
from __future__ import annotations

import base64
import datetime as dt
import email.policy
import email.utils
import importlib
import importlib.util
import io
import os
import platform
import quopri
import random
import re
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out"
VENV_BIN = ROOT / ".venv" / "bin"
MAILBOT = str(VENV_BIN / "mailbot") if (VENV_BIN / "mailbot").exists() else "mailbot"
sys.path.insert(0, str(ROOT))

import openpyxl  # noqa: E402
import yaml  # noqa: E402

from mailbot.rules import load_rules  # noqa: E402
from mailbot.duties.templates import FIRST_DATA_ROW, HEADER_ROW, template_bytes  # noqa: E402
from mailbot.intake.uscc import CHARSET, check_character, org_check_character  # noqa: E402
from mailbot.dates.workdays import WorkCalendar  # noqa: E402

MAILBOX = "xyjgk@cqscjg.example.cn"
DOMAIN = "cqscjg.example.cn"
AUTHORITY = "济南市长清区市场监督管理局"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TOKEN = b"BENCH000000"                # the cell edited per message (same length as its replacement)
CST = dt.timezone(dt.timedelta(hours=8))
PERIODS = ("2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10")

# section -> (main ledger, weight, [(address, staff name, phone)])
SECTIONS: dict[str, tuple[str, float, list[tuple[str, str, str]]]] = {
    "政策法规科": ("双公示台账", 0.60, [("fagui@cqscjg.example.cn", "张伟", "0531-87221318"),
                                  ("zhang.wei@cqscjg.example.cn", "张伟", "0531-87221318")]),
    "信用监管科": ("信用信息归集台账", 0.10, [("xinyong.staff@cqscjg.example.cn", "陈静", "0531-87221302")]),
    "知识产权科": ("信用信息归集台账", 0.10, [("zhichan@cqscjg.example.cn", "刘洋", "0531-87221325")]),
    "个私服务中心": ("信易贷台账", 0.10, [("gesi@cqscjg.example.cn", "李娜", "13853117620")]),
    "餐饮科": ("分级分类监管台账", 0.10, [("canyin@cqscjg.example.cn", "孙丽", "0531-87221336")]),
}

# ---------------------------------------------------------------- names and codes of 长清区

_SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡杜程苏魏吕丁任沈姚卢姜崔谭陆范金石贾夏付方白孟秦邱尹薛段雷侯史陶贺顾毛郝龚邵钱孔"
_GIVEN = ["建国", "秀英", "立新", "德顺", "红梅", "峰", "骏", "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军",
          "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "志强", "海燕", "玉兰"]
_PLACES = ["文昌街道", "平安街道", "崮云湖街道", "五峰山街道", "归德街道", "张夏街道", "万德街道", "孝里街道", "马山镇", "双泉镇"]
_BRANDS = ["鑫源", "鲁清", "恒达", "崮云", "福康", "华信", "好客来", "鼎盛", "泰和", "德润", "乐活", "金泉", "瑞丰", "宏远",
           "联华", "齐鲁", "永盛", "方圆", "兴隆", "润通", "康源", "佳和", "盛世", "天元", "安泰", "华联", "普惠", "长青"]
_TRADES = ["商贸", "食品", "建材", "生态农业发展", "大药房", "精密机械", "餐饮管理", "电子科技", "园林工程", "包装材料",
           "超市", "医疗器械", "农产品", "物流", "化工", "服装", "家具", "汽车服务", "酒业", "茶业"]
_SHOPS = ["家常菜馆", "副食店", "便利店", "水果店", "五金店", "烧烤店", "面馆", "小吃部", "理发店", "日用品店"]
_VIOLATIONS = [
    ("销售超过保质期的食品", "没收违法所得并罚款{y}元", True),
    ("未在经营场所醒目位置悬挂营业执照", "给予警告", False),
    ("餐饮服务从业人员未取得健康证明上岗", "罚款{y}元", True),
    ("未经许可从事食品经营活动", "罚款{y}元", True),
    ("销售未经检验的医疗器械", "罚款{y}元", True),
    ("价格标示不规范", "罚款{y}元", True),
    ("使用未经检定的计量器具", "责令改正并罚款{y}元", True),
    ("发布虚假广告", "责令停止发布并罚款{y}元", True),
    ("未按规定公示年度报告", "给予警告", False),
    ("销售不符合食品安全标准的食品", "没收违法所得并罚款{y}元", True),
]
_LICENCES = [("普通", "准予食品经营许可（JY{n}）"), ("普通", "准予食品生产许可（SC{n}）"),
             ("登记", "准予设立登记"), ("核准", "准予变更登记（住所变更）"), ("普通", "准予药品经营许可（鲁{n}）")]


def person(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + rng.choice(_GIVEN)


def company(rng: random.Random) -> str:
    return f"济南市长清区{rng.choice(_PLACES)}{rng.choice(_BRANDS)}{rng.choice(_TRADES)}有限公司"


def shop(rng: random.Random) -> str:
    return f"济南市长清区{rng.choice(_PLACES)}{rng.choice(_SURNAMES)}记{rng.choice(_SHOPS)}"


def credit_code(rng: random.Random, kind: str = "91", region: str = "370113") -> str:
    """A valid 统一社会信用代码 (GB 32100-2015) with a valid GB 11714 organisation code inside."""
    body = "".join(rng.choice(CHARSET) for _ in range(8))
    first = kind + region + body + org_check_character(body)
    return first + check_character(first)


def corrupt(code: str) -> str:
    """The same code with a wrong (but well-formed) check character."""
    return code[:-1] + CHARSET[(CHARSET.index(code[-1]) + 7) % len(CHARSET)]


# ---------------------------------------------------------------- ledger rows

class Rows:
    """Valid rows for any Annex 1 ledger, from its SheetSpec; the 双公示台账 by hand."""

    def __init__(self, rules, calendar: WorkCalendar, period: str, rng: random.Random):
        self.rules, self.cal, self.rng = rules, calendar, rng
        y, m = map(int, period.split("-"))
        self.year = y
        self.days = [d for d in (dt.date(y, m, i) for i in range(1, 21)) if calendar.is_workday(d)]
        self.codes: set[str] = set()
        self.seq = rng.randint(80, 400)

    def code(self, kind: str = "91") -> str:
        while True:
            c = credit_code(self.rng, kind)
            if c not in self.codes:
                self.codes.add(c)
                return c

    def day(self) -> dt.date:
        return self.rng.choice(self.days)

    def shuanggongshi(self, n: int) -> list[dict[str, Any]]:
        rng, rows = self.rng, []
        for i in range(1, n + 1):
            self.seq += 1
            decided = self.day()
            reported = self.cal.add_workdays(decided, rng.randint(1, 5))          # within 7 working days
            if rng.random() < 0.7:
                kind = rng.choices(["法人及非法人组织", "个体工商户", "自然人"], [6, 3, 1])[0]
                what, penalty, fine = rng.choice(_VIOLATIONS)
                yuan = rng.choice([500, 1000, 2000, 3000, 5000, 8000, 10000, 20000, 50000]) if fine else 0
                row = {"信息类别": "行政处罚", "决定书文号": f"长市监处罚〔{self.year}〕{self.seq}号",
                       "处罚类别或许可类别": "罚款" if fine else "警告",
                       "决定内容": f"{what}，{penalty.format(y=yuan)}",
                       "罚款金额（万元）": round(yuan / 10000, 4) if fine else None}
            else:
                kind = rng.choices(["法人及非法人组织", "个体工商户"], [7, 3])[0]
                cat, text = rng.choice(_LICENCES)
                row = {"信息类别": "行政许可", "决定书文号": f"长市监许〔{self.year}〕{self.seq:04d}号",
                       "处罚类别或许可类别": cat, "决定内容": text.format(n=f"{rng.randrange(10**13):013d}"),
                       "罚款金额（万元）": None}
            if kind == "法人及非法人组织":
                name, code, rep = company(rng), self.code("91"), person(rng)
            elif kind == "个体工商户":
                name, code, rep = shop(rng), self.code("92"), person(rng)
            else:
                name, code, rep = rng.choice(_SURNAMES) + "某", None, None
            row.update({"序号": i, "行政相对人名称": name, "行政相对人类别": kind, "统一社会信用代码": code,
                        "法定代表人": rep, "决定日期": decided, "上报日期": reported, "决定机关": AUTHORITY})
            rows.append(row)
        return rows

    _TEXT = {
        "文件名称": lambda s, r: r.choice(["关于进一步做好信用修复工作的通知", "关于推进信用分级分类监管的实施意见",
                                         "济南市公共信用信息管理办法", "关于加强双公示工作的通知"]),
        "文号": lambda s, r: f"济信用办发〔{s.year}〕{r.randint(1, 60)}号",
        "发文机关": lambda s, r: r.choice(["济南市社会信用体系建设领导小组办公室", "山东省市场监督管理局", AUTHORITY]),
        "落实情况": lambda s, r: f"组织全体人员学习，参加{r.randint(4, 12)}人",
        "学习主题": lambda s, r: "习近平总书记关于社会信用体系建设的重要论述",
        "学习内容": lambda s, r: "学习《关于推进社会信用体系建设高质量发展促进形成新发展格局的意见》",
        "组织人": lambda s, r: person(r),
        "市场主体名称": lambda s, r: company(r), "企业名称": lambda s, r: company(r),
        "对象名称": lambda s, r: company(r), "申请主体名称": lambda s, r: company(r), "涉事主体": lambda s, r: company(r),
        "信息内容": lambda s, r: r.choice([f"发明专利 ZL{r.randrange(10**12):012d}.{r.randint(0, 9)}",
                                          "申请知识产权质押融资时作出的信用承诺", "履行行政处罚决定，按期缴纳罚款"]),
        "监管领域": lambda s, r: r.choice(["餐饮服务", "食品销售", "食品生产"]),
        "依据文件": lambda s, r: "山东省食品安全信用分级分类监管办法",
        "工作内容": lambda s, r: f"完成辖区{r.randint(20, 400)}户单位年度信用风险等级评定",
        "授信机构": lambda s, r: r.choice(["齐鲁银行济南长清支行", "农商银行长清支行", "建设银行长清支行"]),
        "核查结果": lambda s, r: r.choice(["未发现失信记录", "存在经营异常名录记录"]),
        "采取措施": lambda s, r: r.choice(["准予参加采购活动", "暂缓推荐", "依法限制"]),
        "涉及信息": lambda s, r: f"长市监处罚〔{s.year - 1}〕{r.randint(100, 400)}号",
        "佐证材料": lambda s, r: r.choice(["学习记录", "会议记录", "现场照片2张", "评定结果汇总表"]),
    }

    def generic(self, spec, n: int) -> list[dict[str, Any]]:
        """n valid rows of any ledger: enums from their choices, codes valid, dates meeting the row checks."""
        rng, rows = self.rng, []
        later: dict[str, int] = {}
        for chk in spec.row_checks:
            if chk.kind == "within_working_days":
                cap = max(0, min(chk.limit, 5))
            elif chk.kind == "within_hours":
                cap = -min(1, chk.limit // 24)          # negative: calendar days
            else:
                cap = 3
            later[chk.later] = min(later.get(chk.later, 99), cap) if cap >= 0 else cap
        for i in range(1, n + 1):
            base = self.day()
            row: dict[str, Any] = {}
            for col in spec.columns:
                if col.type == "enum" and "法人及非法人组织" in col.choices:
                    row[col.name] = rng.choices(["法人及非法人组织", "个体工商户", "自然人"], [7, 2, 1])[0]
                elif col.type == "enum":
                    row[col.name] = rng.choice(col.choices)
            for col in spec.columns:
                name, t = col.name, col.type
                if name in row:
                    continue
                if name == "序号":
                    row[name] = i
                elif t == "date":
                    d = later.get(name)
                    if d is None:
                        row[name] = base
                    elif d < 0:
                        row[name] = base + dt.timedelta(days=rng.randint(0, -d))
                    else:
                        row[name] = self.cal.add_workdays(base, rng.randint(min(1, d), d))
                elif t == "credit_code":
                    if col.required_if:
                        other, values = col.required_if
                        v = row.get(other)
                        row[name] = (self.code("92" if v == "个体工商户" else "91") if v in values else None)
                    else:
                        row[name] = self.code("91")
                elif t == "integer":
                    lo = int(col.minimum) if col.minimum is not None else 1
                    row[name] = rng.randint(max(lo, 1), max(lo, 1) + 400)
                elif t == "number":
                    row[name] = round(rng.uniform(1, 500), 1)
                elif t == "phone":
                    row[name] = f"0531-8722{rng.randint(1000, 9999)}"
                elif name in self._TEXT:
                    row[name] = self._TEXT[name](self, rng)
                elif name == "备注" or not col.required:
                    row[name] = None
                else:
                    row[name] = f"{name}（第{i}项）"
            rows.append(row)
        return rows


# ---------------------------------------------------------------- workbooks

_RULES = None
_CAL = None


def rules_and_calendar():
    global _RULES, _CAL
    if _RULES is None:
        _RULES = load_rules(str(ROOT / "rules"))
        _CAL = WorkCalendar(_RULES.calendar, str(ROOT / "rules"))
    return _RULES, _CAL


@dataclass
class Workbook:
    section: str
    period: str
    main: str
    data: bytes                        # xlsx with TOKEN in 备注 of the main ledger's first row
    member: str                        # the zip member (sheet XML) holding the token
    bad_cell: str                      # a cell of the main ledger that a "bad" copy gets wrong, e.g. E4
    bad_value: str                     # what it says then: a code with a wrong check character, or 2026.13.01
    bad_what: str


def build_workbook(section: str, period: str, rows: int, seed: int) -> Workbook:
    """The section's Annex 1 workbook for `period`: main ledger `rows` rows, others as a clerk fills them."""
    from openpyxl.utils import get_column_letter
    rules, cal = rules_and_calendar()
    rng = random.Random(seed)
    main, _w, staff = SECTIONS[section]
    gen = Rows(rules, cal, period, rng)
    wb = openpyxl.load_workbook(io.BytesIO(template_bytes(rules, section, period)))
    cover = wb[rules.cover.name]
    name, phone = staff[0][1], staff[0][2]
    for row in cover.iter_rows(min_row=2):
        if row[0].value == "联系人":
            row[1].value = name
        elif row[0].value == "联系电话":
            row[1].value = phone
    bad: tuple[str, str, str] | None = None
    for ws in wb.worksheets:
        spec = rules.sheet(ws.title)
        if spec is None:
            continue
        if ws.title == main:
            data = gen.shuanggongshi(rows) if main == "双公示台账" else gen.generic(spec, rows)
            data[0]["备注"] = TOKEN.decode()
        elif spec.allow_empty:
            data = []
        else:
            data = gen.generic(spec, 3)
        headers = {ws.cell(HEADER_ROW, c).value: c for c in range(1, ws.max_column + 1)}
        for r, values in enumerate(data, start=FIRST_DATA_ROW):
            for col, v in values.items():
                if v is not None:
                    ws.cell(r, headers[col]).value = v
        if ws.title == main and len(data) > 1:
            # the mistake a "bad" copy carries, in the second row: a credit code with a wrong
            # check character where the ledger has codes, else a date with no 13th month
            code_col = next((c.name for c in spec.columns if c.type == "credit_code"), None)
            k = next((k for k, v in enumerate(data[1:], start=1) if code_col and v.get(code_col)), None)
            if k is not None:
                bad = (f"{get_column_letter(headers[code_col])}{FIRST_DATA_ROW + k}",
                       corrupt(data[k][code_col]), "bad-credit-code")
            else:
                date_col = next(c.name for c in spec.columns if c.type == "date" and c.required)
                bad = (f"{get_column_letter(headers[date_col])}{FIRST_DATA_ROW + 1}",
                       f"{gen.year}.13.01", "bad-date")
        used = FIRST_DATA_ROW + len(data)
        if ws.max_row >= used:
            ws.delete_rows(used, ws.max_row - used + 1)       # as make_cases: no empty prepared rows
    wb.properties.creator = name
    wb.properties.lastModifiedBy = name
    buf = io.BytesIO()
    wb.save(buf)
    out = buf.getvalue()
    # openpyxl writes strings inline, so the token is in the main sheet's XML
    z = zipfile.ZipFile(io.BytesIO(out))
    member = next(n for n in z.namelist() if n.startswith("xl/worksheets/") and TOKEN in z.read(n))
    assert z.read(member).count(TOKEN) == 1, (section, period)
    cell, value, what = bad or ("", "", "")
    return Workbook(section, period, main, out, member, cell, value, what)


def _inline_cell(xml: bytes, ref: str, text: str) -> bytes:
    """Replace cell `ref` of a sheet's XML by an inline string cell holding `text`."""
    pattern = re.compile(rb'<c r="' + ref.encode() + rb'"(?: [^>]*?)?(?:/>|>.*?</c>)', re.S)
    new = f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'.encode()
    out, n = pattern.subn(new, xml, count=1)
    assert n == 1, ref
    return out


def stamp(book: Workbook, number: int, bad: bool = False) -> bytes:
    """The workbook with its batch cell set to `number` (and its one mistake, if asked)."""
    src = zipfile.ZipFile(io.BytesIO(book.data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == book.member:
                data = data.replace(TOKEN, f"BENCH{number:06d}".encode())
                if bad and book.bad_cell:
                    data = _inline_cell(data, book.bad_cell, book.bad_value)
            dst.writestr(info, data)
    return buf.getvalue()


# ---------------------------------------------------------------- messages

def _b64lines(data: bytes, width: int = 76) -> str:
    s = base64.b64encode(data).decode()
    return "\r\n".join(s[i:i + width] for i in range(0, len(s), width))


def _word(text: str, charset: str = "gb18030") -> str:
    return "=?%s?B?%s?=" % (charset, base64.b64encode(text.encode(charset)).decode())


def python_layout(*, sender: str, realname: str, subject: str, body: str, filename: str, data: bytes,
                  when: dt.datetime, message_id: str) -> bytes:
    """Python's email package: UTF-8 RFC 2047 headers, RFC 2231 file name, base64 attachment."""
    m = EmailMessage(policy=email.policy.SMTP)
    m["From"] = email.utils.formataddr((realname, sender))
    m["To"] = email.utils.formataddr(("信用监管科", MAILBOX))
    m["Subject"] = subject
    m["Date"] = email.utils.format_datetime(when)
    m["Message-ID"] = message_id
    m["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.16.3"
    m.set_content(body)
    m.add_attachment(data, maintype="application", subtype=XLSX.split("/")[1], filename=filename)
    return m.as_bytes()


def foxmail_layout(*, sender: str, realname: str, subject: str, body: str, filename: str, data: bytes,
                   when: dt.datetime, message_id: str) -> bytes:
    """Foxmail 7.2: GB18030 RFC 2047 words, even inside the quoted name/filename parameters."""
    bnd = f"----=_001_NextPart{when.strftime('%m%d%H%M%S')}_=----"
    alt = f"----=_002_NextPart{when.strftime('%m%d%H%M%S')}_=----"
    html = ('<html><head><meta http-equiv="content-type" content="text/html; charset=GB18030"></head><body>'
            + "".join(f"<div>{line or '&nbsp;'}</div>" for line in body.split("\n")) + "</body></html>")
    w = _word(filename)
    lines = [
        f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S +0800')}",
        f"From: \"{_word(realname)}\" <{sender}>",
        f"To: \"{_word('信用监管科')}\" <{MAILBOX}>",
        f"Subject: {_word(subject)}",
        "X-Priority: 3",
        "X-Has-Attach: yes",
        "X-Mailer: Foxmail 7.2.25.228[cn]",
        "Mime-Version: 1.0",
        f"Message-ID: {message_id}",
        f"Content-Type: multipart/mixed;\r\n\tboundary=\"{bnd}\"",
        "",
        "This is a multi-part message in MIME format.",
        "",
        f"--{bnd}",
        f"Content-Type: multipart/alternative;\r\n\tboundary=\"{alt}\"",
        "",
        "",
        f"--{alt}",
        "Content-Type: text/plain;\r\n\tcharset=\"GB18030\"",
        "Content-Transfer-Encoding: base64",
        "",
        _b64lines(body.replace("\n", "\r\n").encode("gb18030")),
        "",
        f"--{alt}",
        "Content-Type: text/html;\r\n\tcharset=\"GB18030\"",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        quopri.encodestring(html.encode("gb18030")).decode().replace("\n", "\r\n"),
        "",
        f"--{alt}--",
        "",
        f"--{bnd}",
        f"Content-Type: application/octet-stream;\r\n\tname=\"{w}\"",
        "Content-Transfer-Encoding: base64",
        f"Content-Disposition: attachment;\r\n\tfilename=\"{w}\"",
        "",
        _b64lines(data),
        "",
        f"--{bnd}--",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")


@dataclass
class Mail:
    number: int
    raw: bytes
    message_id: str
    sender: str
    section: str
    period: str
    expect: str                       # accepted | rejected-row (one bad credit code)
    resend_of: int | None = None


@dataclass
class Corpus:
    mails: list[Mail]
    workbooks: int
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


def make_corpus(n: int, rows: int = 200, *, seed: int = 20261126, bad_share: float = 0.05,
                resend_share: float = 0.02, first_number: int = 1, periods: tuple[str, ...] = PERIODS,
                progress: bool = True) -> Corpus:
    """n distinct messages (see the module's docstring); deterministic for a seed."""
    t0 = time.monotonic()
    rng = random.Random(seed)
    books: dict[tuple[str, str], Workbook] = {}
    names = list(SECTIONS)
    weights = [SECTIONS[s][1] for s in names]
    mails: list[Mail] = []
    sent_files: list[tuple[int, bytes, str, str, str]] = []     # number, data, section, period, filename
    for k in range(n):
        number = first_number + k
        section = rng.choices(names, weights)[0]
        period = rng.choice(periods)
        main, _w, staff = SECTIONS[section]
        address, person_name, phone = rng.choice(staff)
        y, m = map(int, period.split("-"))
        label = f"{y}年{m}月"
        resend = None
        if sent_files and rng.random() < resend_share:
            resend, data, section, period, filename = rng.choice(sent_files)
            main, _w, staff = SECTIONS[section]
            address, person_name, phone = staff[0]
            y, m = map(int, period.split("-"))
            label = f"{y}年{m}月"
            expect = next(x.expect for x in mails if x.number == resend)
            subject = f"{section}{label}信用监测报送材料（重发）"
        else:
            key = (section, period)
            if key not in books:
                if progress:
                    print(f"  workbook {len(books) + 1}: {section} {period} ({rows} rows)", file=sys.stderr, flush=True)
                books[key] = build_workbook(section, period, rows, seed=rng.randrange(2**32))
            bad = rng.random() < bad_share
            data = stamp(books[key], number, bad=bad)
            expect = "rejected-row" if bad else "accepted"
            filename = rng.choice([f"附件1信用状况监测分析报送材料模板（{section}）{label}.xlsx",
                                   f"{section}{label}信用监测报送材料.xlsx",
                                   f"附件1-{section}-{label}.xlsx"])
            subject = rng.choice([f"{section}{label}信用监测报送材料", f"{section}{m}月份信用监测材料",
                                  f"报送{label}信用状况监测分析材料（{section}）"])
            sent_files.append((number, data, section, period, filename))
        # sent in the first days of the next month (the deadline is that month's 25th or 30th)
        sy, sm = (y + 1, 1) if m == 12 else (y, m + 1)
        when = dt.datetime(sy, sm, rng.randint(1, 20), rng.randint(8, 17), rng.randint(0, 59), rng.randint(0, 59),
                           tzinfo=CST)
        body = (f"信用监管科：\n\n    您好！附件是我科{label}信用监测报送材料，请查收。\n\n"
                f"{section} {person_name}\n电话：{phone}\n")
        style = rng.random()
        mid = f"<{when.strftime('%Y%m%d%H%M%S')}.{number:06d}.{rng.randrange(16**8):08x}@{DOMAIN}>"
        layout = python_layout if style < 0.5 else foxmail_layout
        raw = layout(sender=address, realname=f"{section} {person_name}", subject=subject, body=body,
                     filename=filename, data=data, when=when, message_id=mid)
        mails.append(Mail(number, raw, mid, address, section, period, expect, resend))
    return Corpus(mails, len(books), time.monotonic() - t0,
                  {"rows": rows, "seed": seed, "bad_share": bad_share, "resend_share": resend_share,
                   "periods": list(periods), "mean_bytes": round(sum(len(x.raw) for x in mails) / max(1, n))})


def write_corpus(corpus: Corpus, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for mail in corpus.mails:
        p = directory / f"{mail.number:06d}.eml"
        p.write_bytes(mail.raw)
        paths.append(p)
    return paths


# ---------------------------------------------------------------- config and processes

def section_addresses() -> dict[str, list[str]]:
    data = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    return {k: list(v) for k, v in data["sections"].items()}


def write_config(path: Path, storage: Path, *, database: str | None = None, imap: dict | None = None,
                 smtp: dict | None = None, **extra: Any) -> Path:
    """A deployment config for a benchmark: the example's sections, storage in a scratch folder.

    The reply cap (replies_per_sender_per_hour) is lifted: a thousand messages from a handful of
    addresses would otherwise draft almost no replies, and drafting is part of the work measured.
    """
    cfg: dict[str, Any] = {
        "mailbox_address": MAILBOX,
        "mailbox_name": "信用监管科",
        "credit_section": "信用监管科",
        "sections": section_addresses(),
        "storage": str(storage),
        "timezone": "Asia/Shanghai",
        "replies_per_sender_per_hour": 1_000_000,
    }
    if database:
        cfg["database"] = database
    if imap:
        cfg["imap"] = imap
    if smtp:
        cfg["smtp"] = smtp
    cfg.update(extra)
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Measured:
    returncode: int
    wall: float
    maxrss_kb: int
    user: float
    sys: float
    tree_pss_kb: int = 0        # with tree=True: the peak of the summed PSS of the command and its descendants


def run_measured(argv: list[str], *, stdout: Any = None, stderr: Any = None, timeout: float = 3600,
                 on_line: Any = None, env: dict | None = None, tree: bool = False) -> Measured:
    """Run a child; its wall time, peak RSS, user and system time.

    The peak RSS comes from GNU time (/usr/bin/time -f %M) wrapped around the command, not from
    this process's wait4(): a child's ru_maxrss also counts the image it was forked from before
    its exec, i.e. this (large: it holds the generated mail) benchmark process. Without
    /usr/bin/time, wait4's figure is used and says so.

    on_line(line: bytes, t: float, rss_kib: int | None): called for each line of stdout as it
    arrives, with the child's resident set size then (then stdout must be None: it is read
    through a pipe).

    tree: also sample, every 0.2 s, the proportional set size (PSS: shared pages split between the
    processes sharing them) summed over the command and all its descendants (a poll's worker
    processes: GNU time's figure is the largest single process), and keep the peak.
    """
    import shutil as _shutil
    import threading as _threading
    import tempfile as _tempfile
    gnu_time = _shutil.which("time", path="/usr/bin:/bin")
    report = None
    if gnu_time:
        fd, report = _tempfile.mkstemp(prefix="mailbot-bench-time-", suffix=".txt")
        os.close(fd)
        argv = [gnu_time, "-f", "%M %e %U %S", "-o", report, *argv]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE if on_line else stdout, stderr=stderr,
                         stdin=subprocess.DEVNULL, env=env)
    peak = [0]
    done = _threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            pids = _descendants(p.pid)
            if gnu_time:
                pids.discard(p.pid)
            peak[0] = max(peak[0], sum(pss_kib(x) or 0 for x in pids))
    sampler = _threading.Thread(target=sample, daemon=True) if tree else None
    if sampler:
        sampler.start()
    if on_line:
        assert p.stdout is not None
        for line in p.stdout:
            on_line(line, time.monotonic(), _child_rss(p.pid, gnu_time is not None))
            if time.monotonic() - t0 > timeout:
                p.kill()
                break
    if not report:                      # no GNU time: wait4's figures (see above)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        return Measured(p.returncode, time.monotonic() - t0, ru.ru_maxrss, ru.ru_utime, ru.ru_stime)
    try:
        p.wait(timeout=max(1.0, timeout - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    wall = time.monotonic() - t0
    done.set()
    if sampler:
        sampler.join()
    try:
        last = Path(report).read_text().strip().splitlines()[-1].split()
        maxrss, user, sys_ = int(last[0]), float(last[2]), float(last[3])
    except (OSError, IndexError, ValueError):
        maxrss, user, sys_ = 0, 0.0, 0.0
    finally:
        os.unlink(report)
    return Measured(p.returncode, wall, maxrss, user, sys_, peak[0])


def _descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        x = todo.pop()
        out.add(x)
        try:
            todo += [int(c) for c in Path(f"/proc/{x}/task/{x}/children").read_text().split()]
        except OSError:
            pass
    return out


def pss_kib(pid: int) -> int | None:
    """The proportional set size of a process, in KiB (smaps_rollup)."""
    return _proc_kib(f"/proc/{pid}/smaps_rollup", "Pss:")


def _child_rss(pid: int, wrapped: bool) -> int | None:
    """VmRSS of the child; through /usr/bin/time, of time's own child."""
    if not wrapped:
        return rss_kib(pid)
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return rss_kib(int(kids[0])) if kids else None


def rss_kib(pid: int) -> int | None:
    """The current resident set size of a process (VmRSS), in KiB."""
    return _proc_kib(f"/proc/{pid}/status", "VmRSS:")


def _proc_kib(path: str, field: str) -> int | None:
    """A "Field:  N kB" line of a /proc file, in KiB; None where the process or the line is gone."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
    return None


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "")
    except OSError:
        pass
    mem = 0
    try:
        mem = int(next(ln.split()[1] for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))) // 1024
    except (OSError, StopIteration):
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_mib": mem, "python": platform.python_version(),
            "kernel": platform.release(), "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "loadavg_at_start": list(os.getloadavg())}


_MAILSERVERS = None


def mailservers():
    """The Dovecot launcher: mailbot.dev.devservers where it exists, else tests/mailservers.py (by path)."""
    global _MAILSERVERS
    if _MAILSERVERS is not None:
        return _MAILSERVERS
    try:
        _MAILSERVERS = importlib.import_module("mailbot.dev.devservers")
        return _MAILSERVERS
    except ImportError:
        spec = importlib.util.spec_from_file_location("mailbot_bench_mailservers", ROOT / "tests" / "mailservers.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        _MAILSERVERS = mod
        return mod


def postgres_fresh(url: str) -> tuple[str, Any]:
    """A fresh empty database on the server of `url` (its database part is the admin database).

    Returns (url of the new database, drop()).
    """
    import uuid

    import sqlalchemy as sa
    name = f"mailbot_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0'))
    base = url.rsplit("/", 1)[0] if re.search(r"//[^/]*/", url) else url
    new = base + "/" + name

    def drop() -> None:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return new, drop


def summarize(values: list[float]) -> dict[str, float]:
    import statistics
    if not values:
        return {}
    return {"n": len(values), "median": statistics.median(values), "min": min(values), "max": max(values),
            "mean": statistics.fmean(values)}


def out_dir() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    return OUT


def timestamp() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def profile_summary(prof: Path, top: int) -> dict:
    """A cProfile file as text and data: top `top` by cumulative and own time, and the cumulative
    list restricted to mailbot's own functions (the plain one starts with runpy, main() and the
    other wrappers around everything)."""
    import io
    import pstats
    report: dict = {}
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        st = pstats.Stats(str(prof), stream=buf)
        st.strip_dirs().sort_stats(key).print_stats(top)
        report[key] = buf.getvalue()
    st = pstats.Stats(str(prof))
    total = st.total_tt                                       # type: ignore[attr-defined]
    report["total_s"] = round(total, 2)

    def rows(key: str, keep=lambda f: True) -> list[dict]:
        st.sort_stats(key)
        out = []
        for func in st.fcn_list:                              # type: ignore[attr-defined]
            if not keep(func):
                continue
            _cc, nc, tt, ct, _callers = st.stats[func]        # type: ignore[attr-defined]
            out.append({"function": f"{Path(func[0]).name}:{func[1]}({func[2]})", "calls": nc,
                        "tottime_s": round(tt, 3), "cumtime_s": round(ct, 3),
                        "cum_share": round(ct / total, 3) if total else None})
            if len(out) >= top:
                break
        return out
    report["top_cumulative"] = rows("cumulative")
    report["top_tottime"] = rows("tottime")
    report["top_cumulative_mailbot"] = rows("cumulative", lambda f: "/mailbot/" in f[0] and "/site-packages/" not in f[0])
    buf = io.StringIO()
    buf.write(f"top {top} of mailbot's own functions by cumulative time ({total:.2f} s profiled in all)\n")
    buf.write(f"{'calls':>9} {'tottime':>8} {'cumtime':>8} {'share':>6}  function\n")
    for r in report["top_cumulative_mailbot"]:
        buf.write(f"{r['calls']:>9} {r['tottime_s']:>8.3f} {r['cumtime_s']:>8.3f} {r['cum_share']:>6.1%}  {r['function']}\n")
    report["cumulative_mailbot"] = buf.getvalue()
    return report
