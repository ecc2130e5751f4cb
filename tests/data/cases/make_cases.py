#!/usr/bin/env python3
"""Regenerate the test mail in tests/data/cases/: NAME.eml (made by a real mail tool) + NAME.yaml.

    .venv/bin/python tests/data/cases/make_cases.py            # all cases
    .venv/bin/python tests/data/cases/make_cases.py mutt_gb18030_rfc2231   # some cases

Every message is composed by the tool a section's staff (or a mail server) really uses, and
captured without being sent anywhere:

    mutt        set sendmail= a script writing stdin to a file (mutt -n -F /dev/null)
    mail        GNU Mailutils, -E 'set sendmail=sendmail:///script'
    swaks       to an aiosmtpd capture server this script runs on 127.0.0.1
    sendEmail   to the same capture server
    mpack       -o FILE (mpack writes To:-less output; the From/To/Date lines a submitting
                MTA adds are prepended)
    exim4       a private config (-C) whose router fails the recipient: Exim writes the
                bounce itself and delivers it to a file
    Python      email package, only for the Foxmail/Outlook header layouts no Linux tool
                writes (RFC 2047 words inside a quoted filename parameter)

Workbooks are the real Annex 1 template (mailbot.duties.templates.template_bytes) filled with
openpyxl, then re-saved by LibreOffice (soffice --headless --convert-to) as .xlsx, .xls and
.ods; photos are PPM images encoded by cjpeg (libjpeg-turbo-progs); the disguised file is a
PDF written by LibreOffice. The only edit made to a tool's output: the dates in its header
lines are set to the scenario's date (the tools stamp the generation time).

Needs: mutt, mailutils, swaks, sendemail, mpack, exim4-daemon-light, zip, libreoffice-calc
(soffice), libjpeg-turbo-progs (cjpeg); the project's venv (openpyxl, aiosmtpd, PyYAML).
Output differs from run to run only in Message-IDs, MIME boundaries and zip timestamps.
"""
from __future__ import annotations

import base64
import datetime as dt
import email.utils
import io
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

import openpyxl  # noqa: E402
import yaml  # noqa: E402

from mailbot.rules import load_rules  # noqa: E402
from mailbot.duties.templates import FIRST_DATA_ROW, HEADER_ROW, template_bytes  # noqa: E402

CST = dt.timezone(dt.timedelta(hours=8))
RECEIVED = "2026-11-20T10:00:00+08:00"
PERIOD = "2026-11"
MAILBOX = "xyjgk@cqscjg.example.cn"
D = dt.date

# ============================================================== 统一社会信用代码 (GB 32100-2015)

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"          # no I O S V Z
USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]          # 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]                    # GB 11714 组织机构代码
PLACEHOLDER = "00000000000000000X"                         # 个体工商户 without a USCC


def uscc_check(first17: str) -> str:
    s = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS))
    return USCC_CHARS[(31 - s % 31) % 31]


def org_check(body8: str) -> str:
    c = 11 - sum(int(ch, 36) * w for ch, w in zip(body8, ORG_WEIGHTS)) % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def uscc(body8: str, kind: str = "91", region: str = "370113") -> str:
    """A valid code: kind (91 企业, 92 个体工商户, 93 农民专业合作社), 长清区 370113, an
    organisation code with its own check digit, and the GB 32100 check character."""
    assert len(body8) == 8 and all(c in USCC_CHARS for c in body8), body8
    first = kind + region + body8 + org_check(body8)
    return first + uscc_check(first)


def corrupt_check(code: str) -> str:
    """The same code with a wrong (but well-formed) check character."""
    good = code[-1]
    bad = USCC_CHARS[(USCC_CHARS.index(good) + 7) % 31]
    return code[:-1] + bad


assert uscc("M000100Y", "91", "350100") == "91350100M000100Y43"
assert uscc("MA62K026", "91", "512081") == "91512081MA62K0260E"
assert uscc("60003734", "91", "110000") == "91110000600037341L"

# Market entities of 长清区 (invented names, valid codes).
CO = {
    "济南长清区鑫源商贸有限公司": uscc("MA3C7K2N"),
    "山东鲁清食品有限公司": uscc("MA94XW1L"),
    "济南长清区恒达建材有限公司": uscc("MA7FT3QY"),
    "济南崮云湖生态农业发展有限公司": uscc("MA3NBE08"),
    "济南市长清区福康大药房有限公司": uscc("MA64HJ2R"),
    "山东齐鲁华信精密机械有限公司": uscc("MA3PR6U1"),
    "济南长清区好客来餐饮管理有限公司": uscc("MA7D2LK9"),
    "济南长清区平安街道张记家常菜馆": uscc("MA8E5G3T", kind="92"),
    "济南市长清区万德镇丰源农机专业合作社": uscc("MA3W8N6C", kind="93"),
    "济南长清鼎盛电子科技有限公司": uscc("MA7L4QX2"),
    "山东泰和园林工程有限公司": uscc("MA3Y1RB5"),
    "济南长清区德润包装材料有限公司": uscc("MA952HU7"),
    "济南长清区乐活超市有限公司": uscc("MA3AJD4F"),
}

# ============================================================== ledger rows (November 2026)

AUTHORITY = "济南市长清区市场监督管理局"


def rows_shuanggongshi() -> list[dict]:
    """双公示台账 of 政策法规科: decisions and uploads within 7 working days (no holidays in Nov 2026)."""
    return [
        {"序号": 1, "信息类别": "行政处罚", "行政相对人名称": "济南长清区鑫源商贸有限公司",
         "行政相对人类别": "法人及非法人组织", "统一社会信用代码": CO["济南长清区鑫源商贸有限公司"],
         "法定代表人": "王建国", "决定书文号": "长市监处罚〔2026〕118号", "处罚类别或许可类别": "罚款",
         "决定内容": "销售超过保质期的食品，没收违法所得并罚款5000元", "罚款金额（万元）": 0.5,
         "决定日期": D(2026, 11, 3), "上报日期": D(2026, 11, 6), "决定机关": AUTHORITY},
        {"序号": 2, "信息类别": "行政处罚", "行政相对人名称": "长清区文昌街道李记副食店",
         "行政相对人类别": "个体工商户", "统一社会信用代码": PLACEHOLDER,
         "法定代表人": "李秀英", "决定书文号": "长市监处罚〔2026〕121号", "处罚类别或许可类别": "警告",
         "决定内容": "未在经营场所醒目位置悬挂营业执照，给予警告", "罚款金额（万元）": None,
         "决定日期": D(2026, 11, 5), "上报日期": D(2026, 11, 10), "决定机关": AUTHORITY,
         "备注": "未办理统一社会信用代码，工商注册号370113600123457"},
        {"序号": 3, "信息类别": "行政许可", "行政相对人名称": "山东鲁清食品有限公司",
         "行政相对人类别": "法人及非法人组织", "统一社会信用代码": CO["山东鲁清食品有限公司"],
         "法定代表人": "赵立新", "决定书文号": "长市监许〔2026〕0457号", "处罚类别或许可类别": "普通",
         "决定内容": "准予食品生产许可（SC10637011300457）", "罚款金额（万元）": None,
         "决定日期": D(2026, 11, 9), "上报日期": D(2026, 11, 11), "决定机关": AUTHORITY},
        {"序号": 4, "信息类别": "行政处罚", "行政相对人名称": "济南长清区平安街道张记家常菜馆",
         "行政相对人类别": "个体工商户", "统一社会信用代码": CO["济南长清区平安街道张记家常菜馆"],
         "法定代表人": "张德顺", "决定书文号": "长市监处罚〔2026〕125号", "处罚类别或许可类别": "罚款",
         "决定内容": "餐饮服务从业人员未取得健康证明上岗，罚款2000元", "罚款金额（万元）": 0.2,
         "决定日期": D(2026, 11, 12), "上报日期": D(2026, 11, 17), "决定机关": AUTHORITY},
        {"序号": 5, "信息类别": "行政处罚", "行政相对人名称": "刘某",
         "行政相对人类别": "自然人", "统一社会信用代码": None,
         "法定代表人": None, "决定书文号": "长市监处罚〔2026〕127号", "处罚类别或许可类别": "罚款",
         "决定内容": "未经许可从事食品经营活动，罚款3000元", "罚款金额（万元）": 0.3,
         "决定日期": D(2026, 11, 13), "上报日期": D(2026, 11, 18), "决定机关": AUTHORITY},
    ]


def rows_zhidu(section: str) -> list[dict]:
    return [
        {"序号": 1, "文件名称": "关于进一步做好信用修复工作的通知", "文号": "济信用办发〔2026〕12号",
         "发文机关": "济南市社会信用体系建设领导小组办公室", "文件层级": "市", "印发日期": D(2026, 10, 28),
         "落实方式": "组织学习", "落实情况": f"2026年11月6日{section}组织全体人员学习，参加6人",
         "佐证材料": "学习记录"},
    ]


def rows_lilun(n: int = 6) -> list[dict]:
    return [
        {"序号": 1, "学习日期": D(2026, 11, 13), "学习主题": "习近平总书记关于社会信用体系建设的重要论述",
         "学习形式": "集体学习", "组织人": "科长", "参加人数": n,
         "学习内容": "学习《关于推进社会信用体系建设高质量发展促进形成新发展格局的意见》", "佐证材料": "会议记录"},
    ]


def rows_yiyi() -> list[dict]:
    return [
        {"序号": 1, "业务类型": "信用修复", "申请主体名称": "济南长清区恒达建材有限公司",
         "统一社会信用代码": CO["济南长清区恒达建材有限公司"], "涉及信息": "长市监处罚〔2025〕233号",
         "收到日期": D(2026, 11, 16), "办结日期": D(2026, 11, 17), "办理结果": "准予修复"},
    ]


def rows_guiji() -> list[dict]:
    return [
        {"序号": 1, "信息类别": "知识产权", "市场主体名称": "山东齐鲁华信精密机械有限公司", "主体类别": "法人及非法人组织",
         "统一社会信用代码": CO["山东齐鲁华信精密机械有限公司"], "信息内容": "发明专利 ZL202410583216.4 一种数控机床主轴冷却装置",
         "主体授权": "已授权", "信息形成日期": D(2026, 11, 4), "上传日期": D(2026, 11, 10)},
        {"序号": 2, "信息类别": "信用承诺", "市场主体名称": "济南长清鼎盛电子科技有限公司", "主体类别": "法人及非法人组织",
         "统一社会信用代码": CO["济南长清鼎盛电子科技有限公司"], "信息内容": "申请知识产权质押融资时作出的信用承诺",
         "主体授权": "已授权", "信息形成日期": D(2026, 11, 11), "上传日期": D(2026, 11, 16)},
    ]


def rows_jiangcheng() -> list[dict]:
    return [
        {"序号": 1, "应用领域": "政府采购", "措施类型": "信用核查", "对象名称": "山东泰和园林工程有限公司",
         "统一社会信用代码": CO["山东泰和园林工程有限公司"], "核查日期": D(2026, 11, 12),
         "核查结果": "未发现失信记录", "采取措施": "准予参加采购活动"},
        {"序号": 2, "应用领域": "评先评优", "措施类型": "信用核查", "对象名称": "济南长清区德润包装材料有限公司",
         "统一社会信用代码": CO["济南长清区德润包装材料有限公司"], "核查日期": D(2026, 11, 18),
         "核查结果": "存在经营异常名录记录", "采取措施": "暂缓推荐"},
    ]


def rows_fenji(area: str = "餐饮服务") -> list[dict]:
    return [
        {"序号": 1, "监管领域": area, "工作类别": "开展分级分类监管",
         "依据文件": f"山东省{area}食品安全信用分级分类监管办法", "工作内容": f"完成辖区{area}单位2026年度信用风险等级评定",
         "覆盖主体数": 356, "完成日期": D(2026, 11, 16), "佐证材料": "评定结果汇总表"},
    ]


def rows_chengxin(place: str = "文昌街道中川社区", end: dt.date = D(2026, 11, 18)) -> list[dict]:
    return [
        {"序号": 1, "活动名称": "诚信宣传进社区暨消费维权宣传活动", "活动形式": "进社区", "活动地点": place,
         "活动结束日期": end, "上报日期": end + dt.timedelta(days=1), "参与人数": 120,
         "活动内容": "发放诚信经营宣传资料300余份，现场解答群众咨询", "佐证材料": "现场照片2张"},
    ]


def rows_dongtai() -> list[dict]:
    return [
        {"序号": 1, "信息标题": "长清区市场监管局开展“诚信兴商”宣传进社区活动", "发生日期": D(2026, 11, 18),
         "上报日期": D(2026, 11, 19), "刊发情况": "已报区信用办"},
    ]


def rows_xinyidai() -> list[dict]:
    return [
        {"序号": 1, "企业名称": "济南崮云湖生态农业发展有限公司", "统一社会信用代码": CO["济南崮云湖生态农业发展有限公司"],
         "平台注册日期": D(2026, 10, 15), "融资需求金额（万元）": 200, "需求发布日期": D(2026, 10, 20),
         "授信金额（万元）": 150, "授信机构": "齐鲁银行济南长清支行", "授信日期": D(2026, 11, 5), "放款金额（万元）": 150},
        {"序号": 2, "企业名称": "济南市长清区万德镇丰源农机专业合作社", "统一社会信用代码": CO["济南市长清区万德镇丰源农机专业合作社"],
         "平台注册日期": D(2026, 11, 9), "融资需求金额（万元）": 50, "需求发布日期": D(2026, 11, 10),
         "授信金额（万元）": None, "授信机构": None, "授信日期": None, "放款金额（万元）": None, "备注": "银行审批中"},
    ]


CONTACTS = {
    "政策法规科": ("张伟", "0531-87221318"),
    "知识产权科": ("刘洋", "0531-87221325"),
    "信用监管科": ("陈静", "0531-87221302"),
    "宣传科": ("王芳", "0531-87221309"),
    "个私服务中心": ("李娜", "13853117620"),
    "餐饮科": ("孙丽", "0531-87221336"),
    "食品流通科": ("赵强", "0531-87221341"),
    "消费者权益保护科": ("周敏", "0531-87221347"),
}

# ============================================================== workbooks

_RULES = None


def rules():
    global _RULES
    if _RULES is None:
        _RULES = load_rules(str(ROOT / "rules"))
    return _RULES


def fill_template(section: str, sheets: dict[str, list[dict]], *, period: str = PERIOD,
                  drop: tuple[str, ...] = (), rename: dict[str, dict[str, str]] | None = None,
                  contact: tuple[str, str] | None = None, cover_section: str | None = None) -> bytes:
    """The real blank template of `section`, filled like a section's clerk does in Excel.

    sheets: sheet name -> rows (column name -> value); drop: sheets the clerk deleted;
    rename: sheet -> {template header: header the clerk typed instead}.
    Unused template rows are removed afterwards (formats prepared for 200 rows would make
    every file ~40 KB): the files stay a few KB.
    """
    wb = openpyxl.load_workbook(io.BytesIO(template_bytes(rules(), section, period)))
    cover = wb["封面"]
    name, phone = contact or CONTACTS[section]
    for row in cover.iter_rows(min_row=2):
        label = row[0].value
        if label == "联系人":
            row[1].value = name
        elif label == "联系电话":
            row[1].value = phone
        elif label == "报送科室" and cover_section:
            row[1].value = cover_section
    for sheet_name, rows in sheets.items():
        ws = wb[sheet_name]
        headers = {ws.cell(HEADER_ROW, c).value: c for c in range(1, ws.max_column + 1)}
        for r, values in enumerate(rows, start=FIRST_DATA_ROW):
            for col, v in values.items():
                if v is not None:
                    ws.cell(r, headers[col]).value = v
    for sheet_name, changes in (rename or {}).items():
        ws = wb[sheet_name]
        for c in range(1, ws.max_column + 1):
            cell = ws.cell(HEADER_ROW, c)
            if cell.value in changes:
                cell.value = changes[cell.value]
                cell.comment = None
    for sheet_name in drop:
        del wb[sheet_name]
    for ws in wb.worksheets:
        if ws.title in ("填报说明", "封面"):
            continue
        used = FIRST_DATA_ROW + len(sheets.get(ws.title, ()))
        ws.delete_rows(used, ws.max_row - used + 1)
    wb.properties.creator = contact[0] if contact else name
    wb.properties.lastModifiedBy = name
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def single_ledger(title: str, headers: list[str], rows: list[list[Any]]) -> bytes:
    """A clerk's own one-sheet ledger: 'Sheet1', a merged title row, the header, the rows."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.cell(1, 1, title).font = openpyxl.styles.Font(bold=True, size=14)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headers))
    for c, h in enumerate(headers, start=1):
        ws.cell(2, c, h).font = openpyxl.styles.Font(bold=True)
        ws.column_dimensions[openpyxl.utils.get_column_letter(c)].width = 14
    for r, values in enumerate(rows, start=3):
        for c, v in enumerate(values, start=1):
            cell = ws.cell(r, c, v)
            if isinstance(v, dt.date):
                cell.number_format = "yyyy/m/d"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


SHUANG_HEADERS_OWN = [   # a clerk's own header: template names and some accepted aliases
    "序号", "信息类别", "行政相对人名称", "行政相对人类别", "统一社会信用代码", "法定代表人", "决定书文号",
    "处罚类别或许可类别", "决定内容", "罚款金额(万元)", "作出决定日期", "上传日期", "决定机关", "备注",
]
SHUANG_KEYS = [
    "序号", "信息类别", "行政相对人名称", "行政相对人类别", "统一社会信用代码", "法定代表人", "决定书文号",
    "处罚类别或许可类别", "决定内容", "罚款金额（万元）", "决定日期", "上报日期", "决定机关", "备注",
]


def own_shuanggongshi() -> bytes:
    rows = [[r.get(k) for k in SHUANG_KEYS] for r in rows_shuanggongshi()]
    return single_ledger("长清区市场监管局2026年11月“双公示”信息报送台账", SHUANG_HEADERS_OWN, rows)


# -------------------------------------------------------------- LibreOffice

_SOFFICE_PROFILE: str | None = None


def soffice_convert(data: bytes, src_name: str, target: str) -> bytes:
    """Re-save `data` with LibreOffice: target 'xlsx', 'xls' (MS Excel 97), 'ods' or 'pdf'."""
    global _SOFFICE_PROFILE
    if _SOFFICE_PROFILE is None:
        _SOFFICE_PROFILE = tempfile.mkdtemp(prefix="mailbot-soffice-")
    filters = {"xlsx": 'xlsx:Calc MS Excel 2007 XML', "xls": 'xls:MS Excel 97', "ods": "ods", "pdf": "pdf"}
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "in" / src_name
        src.parent.mkdir()
        src.write_bytes(data)
        out = Path(d) / "out"
        run(["soffice", f"-env:UserInstallation=file://{_SOFFICE_PROFILE}", "--headless",
             "--convert-to", filters[target], "--outdir", str(out), str(src)])
        return (out / (src.stem + "." + target)).read_bytes()


SOFFICE_HOW = {
    "xlsx": 'soffice --headless --convert-to xlsx:"Calc MS Excel 2007 XML" --outdir OUT FILE.xlsx',
    "xls": 'soffice --headless --convert-to xls:"MS Excel 97" --outdir OUT FILE.xlsx',
    "ods": "soffice --headless --convert-to ods --outdir OUT FILE.xlsx",
    "pdf": "soffice --headless --convert-to pdf --outdir OUT FILE.csv",
}

# -------------------------------------------------------------- photos and a PDF


def ppm_photo(seed: int, w: int = 160, h: int = 120) -> bytes:
    """A small 'photo': sky, a red banner, people-ish blobs on a square (P6 PPM)."""
    px = bytearray()
    for y in range(h):
        for x in range(w):
            if 20 <= y < 44 and 15 <= x < w - 15:
                r, g, b = 200, 30, 35                       # 红色横幅
                if 26 <= y < 38 and (x // 6 + seed) % 3 == 0:
                    r, g, b = 250, 220, 90                  # 字
            elif y < 60:
                r, g, b = 110 + y, 160 + y // 2, 230        # 天空
            else:
                r, g, b = 150 + (x * seed) % 40, 140, 120   # 广场
                cx = ((x + seed * 13) % 32) - 16
                if (cx * cx + (y - 85 - (x // 32) % 3 * 6) ** 2) < 40:
                    r, g, b = 40 + seed * 20, 50, 90        # 人
            px += bytes((r % 256, g % 256, b % 256))
    return f"P6 {w} {h} 255\n".encode() + bytes(px)


def cjpeg(ppm: bytes) -> bytes:
    return run(["cjpeg", "-quality", "80"], input=ppm).stdout


def pdf_of_ledger() -> bytes:
    """The 双公示 ledger printed to PDF (as some clerks do), from a CSV, by LibreOffice Calc."""
    lines = ["长清区市场监管局2026年11月双公示信息台账"]
    lines.append(",".join(SHUANG_KEYS[:7] + ["决定日期", "上报日期"]))
    for r in rows_shuanggongshi()[:3]:
        lines.append(",".join(str(r.get(k) or "") for k in SHUANG_KEYS[:7] + ["决定日期", "上报日期"]))
    return soffice_convert(("\n".join(lines) + "\n").encode("utf-8"), "双公示台账.csv", "pdf")


# ============================================================== running tools

def run(argv: list, *, input: bytes | None = None, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(argv, input=input, capture_output=True, env=e, cwd=cwd, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]!r} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return p


def tool_version(name: str) -> str:
    def first(argv, pat=None):
        try:
            p = subprocess.run(argv, capture_output=True, timeout=60)
        except FileNotFoundError:
            return f"{name} (not installed)"
        text = re.sub(r"\x1b\[[0-9;]*m", "", (p.stdout + p.stderr).decode(errors="replace"))
        if pat:
            m = re.search(pat, text)
            return m.group(0).strip() if m else text.strip().splitlines()[0]
        return text.strip().splitlines()[0]
    return {
        "mutt": lambda: first(["mutt", "-v"]),
        "swaks": lambda: first(["swaks", "--version"]),
        "sendEmail": lambda: first(["sendEmail", "--help"], r"sendEmail-[\d.]+"),
        "mail": lambda: first(["mail", "--version"]),
        "mpack": lambda: first(["mpack"], r"mpack version [\d.]+"),
        "zip": lambda: first(["zip", "-v"], r"Zip [\d.]+ \([^)]*\)(, by Info-ZIP)?"),
        "soffice": lambda: first(["soffice", "--version"], r"LibreOffice [\d.]+"),
        "exim": lambda: first(["exim4", "-bV"]),
        "cjpeg": lambda: first(["cjpeg", "-version"]),
        "python": lambda: f"Python {sys.version.split()[0]} email package",
        "openpyxl": lambda: f"openpyxl {openpyxl.__version__}",
    }[name]()


_VERSIONS: dict[str, str] = {}


def version(name: str) -> str:
    if name not in _VERSIONS:
        _VERSIONS[name] = tool_version(name)
    return _VERSIONS[name]


class Work:
    """A scratch folder for one message: files on disk under the names the sender's PC had."""

    def __init__(self, root: Path):
        self.dir = Path(tempfile.mkdtemp(prefix="case-", dir=root))

    def put(self, name: str | bytes, data: bytes) -> bytes:
        """Write a file; `name` as bytes keeps a GBK-encoded name. Returns the path as bytes."""
        path = os.fsencode(self.dir) + b"/" + (name if isinstance(name, bytes) else name.encode("utf-8"))
        with open(path, "wb") as f:
            f.write(data)
        return path


# -------------------------------------------------------------- capture: sendmail pipe and SMTP

CAPTURE_SH = """#!/bin/sh
# stands in for sendmail: keep the message the mail program hands over
cat > "$CAPTURE_OUT"
"""


def _capture_script(root: Path) -> str:
    p = root / "capture.sh"
    if not p.exists():
        p.write_text(CAPTURE_SH)
        p.chmod(0o755)
    return str(p)


class CaptureSMTP:
    """An aiosmtpd server on 127.0.0.1 that keeps each message's DATA as it arrived."""

    def __init__(self):
        from aiosmtpd.controller import Controller
        self.messages: list[bytes] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append(envelope.original_content)
                return "250 2.0.0 Ok: kept"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    def take(self) -> bytes:
        for _ in range(50):
            if self.messages:
                return self.messages.pop(0)
            time.sleep(0.1)
        raise RuntimeError("capture server got no message")


_SMTP: CaptureSMTP | None = None


def smtp() -> CaptureSMTP:
    global _SMTP
    if _SMTP is None:
        _SMTP = CaptureSMTP().__enter__()
    return _SMTP


# -------------------------------------------------------------- the tools

def q(x: str | bytes) -> str:
    if isinstance(x, bytes):
        try:
            x.decode("utf-8")
            x = x.decode("utf-8")
        except UnicodeDecodeError:
            return "\"$(printf '%s' " + shlex.quote(x.decode("gb18030")) + " | iconv -t GBK)\""
    return shlex.quote(x)


def mutt(work: Work, *, sender: str, realname: str, subject: str, body: str, files: list[bytes],
         send_charset: str = "gb18030", to: str = MAILBOX) -> tuple[bytes, str]:
    out = work.dir / "mutt.eml"
    cap = _capture_script(work.dir.parent)
    settings = (f'set charset="utf-8"; set send_charset="{send_charset}"; set sendmail="{cap}"; '
                f'set from="{sender}"; set realname="{realname}"; set use_from=yes; '
                'set copy=no; set record=""; set edit_headers=no')
    argv = ["mutt", "-n", "-F", "/dev/null", "-e", settings, "-s", subject]
    for f in files:
        argv += ["-a", f]
    argv += ["--", to]
    run(argv, input=body.encode("utf-8"), env={"CAPTURE_OUT": str(out), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
        cwd=work.dir)
    how = (f"CAPTURE_OUT=out.eml LANG=C.UTF-8 mutt -n -F /dev/null -e {q(settings.replace(cap, 'capture.sh'))} "
           f"-s {q(subject)} " + " ".join(f"-a {q(os.path.basename(f))}" for f in files) + f" -- {to} < body.txt")
    return out.read_bytes(), how


def swaks(work: Work, *, sender: str, subject: str | bytes, body: str | bytes, files: list[tuple[bytes, str]] = (),
          headers: list[str] = (), from_header: str | None = None, to: str = MAILBOX) -> tuple[bytes, str]:
    """files: (path, MIME type). swaks names an attachment after its file (raw bytes)."""
    s = smtp()
    subj = subject if isinstance(subject, bytes) else subject.encode("utf-8")
    argv: list = ["swaks", "--server", f"127.0.0.1:{s.port}", "--from", sender, "--to", to,
                  "--header", b"Subject: " + subj]
    if from_header:
        argv += ["--header", f"From: {from_header}"]
    for h in headers:
        argv += ["--add-header", h]
    bodyfile = work.put("body.txt", body if isinstance(body, bytes) else body.encode("utf-8"))
    if files:
        argv += ["--attach-type", "text/plain", "--attach-body", b"@" + bodyfile]
        for path, ctype in files:
            argv += ["--attach-type", ctype, "--attach", path]
    else:
        argv += ["--body", b"@" + bodyfile]
    run(argv, cwd=work.dir)
    how = (f"swaks --server 127.0.0.1:PORT --from {sender} --to {to} --header {q(b'Subject: ' + subj)}"
           + (f" --header {q('From: ' + from_header)}" if from_header else "")
           + "".join(f" --add-header {q(h)}" for h in headers)
           + (" --attach-type text/plain --attach-body @body.txt" if files else " --body @body.txt")
           + "".join(f" --attach-type {ctype} --attach {q(os.path.basename(p))}" for p, ctype in files))
    return s.take(), how


def send_email(work: Work, *, sender: bytes | str, subject: bytes | str, body: bytes | str, files: list[bytes],
               charset: str, to: str = MAILBOX) -> tuple[bytes, str]:
    """sendEmail (the Perl one, also common as sendEmail.exe on Windows): raw 8-bit names."""
    s = smtp()
    b = lambda x: x if isinstance(x, bytes) else x.encode("utf-8")  # noqa: E731
    argv = ["sendEmail", "-f", b(sender), "-t", to, "-u", b(subject), "-m", b(body),
            "-s", f"127.0.0.1:{s.port}", "-o", f"message-charset={charset}", "-o", "tls=no", "-q"]
    for f in files:
        argv += ["-a", f]
    run(argv, cwd=work.dir)
    how = (f"sendEmail -f {q(b(sender))} -t {to} -u {q(b(subject))} -m {q(b(body))} -s 127.0.0.1:PORT "
           f"-o message-charset={charset} -o tls=no -q" + "".join(f" -a {q(os.path.basename(f))}" for f in files))
    return s.take(), how


def mailutils(work: Work, *, sender: str, subject: str, body: str, files: list[tuple[bytes, str]] = (),
              to: str = MAILBOX) -> tuple[bytes, str]:
    out = work.dir / "mail.eml"
    cap = _capture_script(work.dir.parent)
    argv: list = ["mail", "-E", f"set sendmail=sendmail://{cap}", "-s", subject, "-r", sender,
                  "-a", f"From: {sender}"]
    for path, ctype in files:
        argv += ["--content-type", ctype, "-A", path]
    if files:      # the type in force at the end is also the body's: back to text/plain
        argv += ["--content-type", "text/plain"]
    argv += [to]
    run(argv, input=body.encode("utf-8"), env={"CAPTURE_OUT": str(out), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
        cwd=work.dir)
    how = (f"CAPTURE_OUT=out.eml mail -E 'set sendmail=sendmail:///path/capture.sh' -s {q(subject)} -r {sender} "
           f"-a {q('From: ' + sender)}" + "".join(f" --content-type {c} -A {q(os.path.basename(p))}" for p, c in files)
           + (" --content-type text/plain" if files else "") + f" {to} < body.txt")
    return out.read_bytes(), how


def mpack(work: Work, *, sender: str, subject: bytes, body: bytes, file: bytes, ctype: str,
          when: dt.datetime, to: str = MAILBOX) -> tuple[bytes, str]:
    out = work.dir / "mpack.eml"
    desc = work.put("desc.txt", body)
    run(["mpack", "-s", subject, "-d", desc, "-c", ctype, "-o", str(out), file], cwd=work.dir)
    # what the MTA that mpack hands the message to adds: From, To, Date
    head = f"From: {sender}\nTo: {to}\nDate: {email.utils.format_datetime(when)}\n".encode()
    how = (f"mpack -s {q(subject)} -d desc.txt -c {ctype} -o out.eml {q(os.path.basename(file))}"
           "  # then From:/To:/Date: lines prepended, as the submitting MTA adds them")
    return head + out.read_bytes(), how


EXIM_CONF = """primary_hostname = mx.cqscjg.example.cn
qualify_domain = cqscjg.example.cn
spool_directory = {dir}/spool
log_file_path = {dir}/%slog
exim_user = root
exim_group = root
never_users =
keep_environment =
domainlist local_domains = cqscjg.example.cn
begin routers
mailbox:
  driver = accept
  condition = ${{if eq{{$local_part}}{{xyjgk}}}}
  transport = to_file
no_such_user:
  driver = redirect
  allow_fail
  data = :fail: 550 5.1.1 <$local_part@$domain>: Recipient address rejected: User unknown in local recipient table
begin transports
to_file:
  driver = appendfile
  file = {dir}/out/mailbox
  user = nobody
  mode = 0666
  message_prefix =
  message_suffix =
begin retry
*  *  F,1h,10m
"""


def exim_bounce(work: Work, original: bytes, *, sender: str, rcpt: str) -> tuple[bytes, str]:
    d = work.dir / "exim"
    (d / "spool").mkdir(parents=True)
    for p in (work.dir.parent, work.dir, d):       # exim delivers as nobody
        p.chmod(0o755)
    (d / "out").mkdir()
    (d / "out").chmod(0o777)
    conf = d / "exim.conf"
    conf.write_text(EXIM_CONF.format(dir=d))
    run(["exim4", "-C", str(conf), "-odi", "-f", sender, rcpt], input=original)
    if not (d / "out" / "mailbox").exists():
        raise RuntimeError("exim delivered no bounce: " + (d / "mainlog").read_text(errors="replace"))
    how = (f"exim4 -C exim.conf -odi -f {sender} {rcpt} < original.eml   "
           "# exim.conf: a redirect router ':fail: 550 5.1.1 … User unknown', bounces delivered to a file")
    return (d / "out" / "mailbox").read_bytes(), how


def zip_gbk(work: Work, members: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """Info-ZIP zip run on files whose names on disk are GBK bytes (as on a Chinese Windows PC):
    the names go into the archive as raw GBK, without the UTF-8 flag."""
    d = work.dir / "zipsrc"
    d.mkdir()
    names = []
    for name, data in members:
        gbk = name.encode("gbk")
        with open(os.fsencode(d) + b"/" + gbk, "wb") as f:
            f.write(data)
        names.append(gbk)
    run(["zip", "-X", "-q", str(work.dir / "a.zip"), *names], cwd=d, env={"LANG": "C", "LC_ALL": "C"})
    how = "LANG=C zip -X -q OUT.zip " + " ".join(q(n) for n in names)
    return (work.dir / "a.zip").read_bytes(), how


# -------------------------------------------------------------- Foxmail / Outlook layouts (Python)

def _b64lines(data: bytes, width: int = 76, nl: str = "\r\n") -> str:
    s = base64.b64encode(data).decode()
    return nl.join(s[i:i + width] for i in range(0, len(s), width))


def _word(text: str, charset: str) -> str:
    return "=?%s?B?%s?=" % (charset, base64.b64encode(text.encode(charset)).decode())


def _words(text: str, charset: str, chars: int) -> list[str]:
    return [_word(text[i:i + chars], charset) for i in range(0, len(text), chars)]


def foxmail(*, sender: str, realname: str, subject: str, body: str, files: list[tuple[str, bytes, str]],
            when: dt.datetime, charset: str = "gb18030") -> tuple[bytes, str]:
    """Foxmail 7.2 layout: the attachment name an RFC 2047 word inside the quoted parameter."""
    stamp = when.strftime("%Y%m%d%H%M%S")
    bnd = f"----=_001_NextPart{stamp[-10:]}_=----"
    alt = f"----=_002_NextPart{stamp[-10:]}_=----"
    html = "<html><head><meta http-equiv=\"content-type\" content=\"text/html; charset=GB18030\"></head><body>" + \
        "".join(f"<div>{line or '&nbsp;'}</div>" for line in body.split("\n")) + "</body></html>"
    h = [
        f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S +0800')}",
        f"From: \"{_word(realname, charset)}\" <{sender}>",
        f"To: \"{_word('信用监管科', charset)}\" <{MAILBOX}>",
        f"Subject: {_word(subject, charset)}",
        "X-Priority: 3",
        f"X-GUID: 6A1E7C42-3B5D-4F08-9E21-{stamp[2:]}",
        "X-Has-Attach: yes",
        "X-Mailer: Foxmail 7.2.25.228[cn]",
        "Mime-Version: 1.0",
        f"Message-ID: <{stamp}{abs(hash(subject)) % 10**6:06d}{sender[:6]}@cqscjg.example.cn>",
        f"Content-Type: multipart/mixed;\r\n\tboundary=\"{bnd}\"",
        "",
        "This is a multi-part message in MIME format.",
        "",
        f"--{bnd}",
        f"Content-Type: multipart/alternative;\r\n\tboundary=\"{alt}\"",
        "",
        "",
        f"--{alt}",
        f"Content-Type: text/plain;\r\n\tcharset=\"{charset.upper()}\"",
        "Content-Transfer-Encoding: base64",
        "",
        _b64lines(body.replace("\n", "\r\n").encode(charset)),
        "",
        f"--{alt}",
        f"Content-Type: text/html;\r\n\tcharset=\"{charset.upper()}\"",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        __import__("quopri").encodestring(html.encode(charset)).decode().replace("\n", "\r\n"),
        "",
        f"--{alt}--",
        "",
    ]
    for name, data, ctype in files:
        w = _word(name, charset)
        h += [f"--{bnd}",
              f"Content-Type: {ctype};\r\n\tname=\"{w}\"",
              "Content-Transfer-Encoding: base64",
              f"Content-Disposition: attachment;\r\n\tfilename=\"{w}\"",
              "",
              _b64lines(data),
              ""]
    h += [f"--{bnd}--", ""]
    how = ("python3: headers written as Foxmail 7.2 writes them: Subject/From as =?gb18030?B?…?=, "
           "attachment name=\"=?gb18030?B?…?=\" and filename=\"=?gb18030?B?…?=\" (one RFC 2047 word "
           "inside the quoted parameter), text/plain base64 + text/html quoted-printable in GB18030")
    return "\r\n".join(h).encode("ascii"), how


def outlook(*, sender: str, realname: str, subject: str, body: str, files: list[tuple[str, bytes, str]],
            when: dt.datetime, charset: str = "gb2312") -> tuple[bytes, str]:
    """Outlook 2016 (Chinese) layout: RFC 2047 gb2312 words, long names split in two words
    folded inside the quoted parameter."""
    stamp = when.strftime("%Y%m%d%H%M%S")
    bnd = "----=_NextPart_000_0013_01DB5A3C.7E2F41B0"
    alt = "----=_NextPart_001_0014_01DB5A3C.7E2F41B0"
    html = "<html><body lang=ZH-CN><div class=WordSection1>" + \
        "".join(f"<p class=MsoNormal><span lang=EN-US>{line or '&nbsp;'}</span></p>" for line in body.split("\n")) + \
        "</div></body></html>"
    subj_words = _words(subject, charset, 12)
    h = [
        f"From: \"{_word(realname, charset)}\" <{sender}>",
        f"To: <{MAILBOX}>",
        "Subject: " + "\r\n\t".join(subj_words),
        f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S +0800')}",
        f"Message-ID: <000001db5a3c$7e2f41b0$7a8dc510${stamp[-6:]}@cqscjg.example.cn>",
        "MIME-Version: 1.0",
        f"Content-Type: multipart/mixed;\r\n\tboundary=\"{bnd}\"",
        "X-Mailer: Microsoft Outlook 16.0",
        "Thread-Index: AdtaPH1Zq8xk2mU3R0aHqTQ4x9c1Ag==",
        "Content-Language: zh-cn",
        "",
        "This is a multipart message in MIME format.",
        "",
        f"--{bnd}",
        f"Content-Type: multipart/alternative;\r\n\tboundary=\"{alt}\"",
        "",
        "",
        f"--{alt}",
        f"Content-Type: text/plain;\r\n\tcharset=\"{charset}\"",
        "Content-Transfer-Encoding: base64",
        "",
        _b64lines(body.replace("\n", "\r\n").encode(charset)),
        "",
        f"--{alt}",
        f"Content-Type: text/html;\r\n\tcharset=\"{charset}\"",
        "Content-Transfer-Encoding: base64",
        "",
        _b64lines(html.encode(charset)),
        "",
        f"--{alt}--",
        "",
    ]
    for name, data, ctype in files:
        half = (len(name) + 1) // 2
        w = "\r\n\t".join(_words(name, charset, half))
        h += [f"--{bnd}",
              f"Content-Type: {ctype};\r\n\tname=\"{w}\"",
              "Content-Transfer-Encoding: base64",
              f"Content-Disposition: attachment;\r\n\tfilename=\"{w}\"",
              "",
              _b64lines(data),
              ""]
    h += [f"--{bnd}--", ""]
    how = ("python3: headers written as Outlook 16.0 (zh-cn) writes them: gb2312 RFC 2047 words; the "
           "attachment name split into two words folded inside the quoted name=/filename= parameter")
    return "\r\n".join(h).encode("ascii"), how


def python_plain(*, headers: list[tuple[str, str]], body: str, charset: str = "utf-8") -> bytes:
    """A plain one-part message by the email package (stands in for mailbot's own letters)."""
    from email.message import EmailMessage
    from email.policy import SMTP
    m = EmailMessage(policy=SMTP)
    for k, v in headers:
        m[k] = v
    m.set_content(body, charset=charset)
    return m.as_bytes()


# -------------------------------------------------------------- after the tool

_DATE = re.compile(rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                   rb"\d{4} \d\d:\d\d:\d\d [+-]\d{4}")


def redate(raw: bytes, when: dt.datetime) -> bytes:
    """Set the dates the tool stamped in header lines (Date:, Received:, …) to the scenario's time.

    Only dates within a day of the generation time are touched: a date set earlier (an inner,
    forwarded message already redated) and everything in bodies stay as they are.
    """
    stamp = email.utils.format_datetime(when).encode()
    now = dt.datetime.now(dt.timezone.utc)

    def fix(m: re.Match) -> bytes:
        try:
            t = email.utils.parsedate_to_datetime(m.group(0).decode())
        except (TypeError, ValueError):
            return m.group(0)
        return stamp if abs((t - now).total_seconds()) < 86400 else m.group(0)
    out = []
    for line in raw.splitlines(keepends=True):
        if len(line) < 200 and not re.fullmatch(rb"[A-Za-z0-9+/=]+\r?\n?", line):
            line = _DATE.sub(fix, line)
        out.append(line)
    return b"".join(out)


def when(day: int, hh: int, mm: int, ss: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hh, mm, ss, tzinfo=CST)


# ============================================================== the cases

@dataclass
class Case:
    name: str
    description: str
    make: Callable[["Work"], tuple[bytes, str, str]]       # -> (raw, tool, how)
    outcome: str
    section: str | None
    items: list[dict] = field(default_factory=list)
    error_codes: list[str] = field(default_factory=list)   # problems of the message itself
    sender: str = ""
    notes: str = ""


def item(filename: str, task: int | None, status: str = "accepted", errors=(), warnings=(), period: str = PERIOD,
         **extra) -> dict:
    d = {"filename": filename, "task": task, "period": period, "status": status,
         "error_codes": list(errors), "warning_codes": list(warnings)}
    d.update(extra)
    return d


def workbook_items(filename: str, tasks: dict[int, tuple], period: str = PERIOD) -> list[dict]:
    """One item per task sheet: tasks = {task: (status, errors, warnings)} or {task: ()} for accepted."""
    out = []
    for t, spec in sorted(tasks.items()):
        status, errors, warnings = spec or ("accepted", (), ())
        out.append(item(filename, t, status, errors, warnings, period))
    return out


# -------------------------------------------------------------- workbooks used by several cases

def wb_fagui() -> bytes:
    return fill_template("政策法规科", {
        "制度文件台账": rows_zhidu("政策法规科"),
        "理论学习台账": rows_lilun(),
        "双公示台账": rows_shuanggongshi(),
        "异议处理和信用修复台账": rows_yiyi(),
    })


def wb_zhichan() -> bytes:       # tasks 1, 2 left empty: nothing this month
    return fill_template("知识产权科", {"信用信息归集台账": rows_guiji(), "联合奖惩台账": rows_jiangcheng()})


def wb_xinyong() -> bytes:
    return fill_template("信用监管科", {
        "理论学习台账": rows_lilun(8), "信用信息归集台账": rows_guiji()[1:],
        "分级分类监管台账": rows_fenji("食品销售"), "联合奖惩台账": rows_jiangcheng()[:1],
        "异议处理和信用修复台账": rows_yiyi(),
    })


def wb_canyin() -> bytes:        # task 1 left empty
    return fill_template("餐饮科", {
        "理论学习台账": rows_lilun(5), "诚信宣传台账": rows_chengxin("长清大学城美食街", D(2026, 11, 12)),
        "分级分类监管台账": rows_fenji("餐饮服务"),
    })


def wb_xuanchuan() -> bytes:     # task 10 left empty: no serious event this month
    return fill_template("宣传科", {"信用动态台账": rows_dongtai(), "诚信宣传台账": rows_chengxin()})


def wb_gesi() -> bytes:          # task 1 left empty
    return fill_template("个私服务中心", {"理论学习台账": rows_lilun(4), "信易贷台账": rows_xinyidai()})


def wb_mistakes() -> bytes:
    """政策法规科's workbook with a clerk's mistakes; the two sheets with nothing this month deleted."""
    good = rows_shuanggongshi()
    r = [dict(x) for x in good[:1]]
    bad_code = dict(good[2], 序号=2)                                        # wrong check character
    bad_code["统一社会信用代码"] = corrupt_check(bad_code["统一社会信用代码"])
    no_number = dict(good[3], 序号=3, 决定书文号=None)                       # required cell empty
    bad_date = dict(good[4], 序号=4, 上报日期="2026.13.01")                  # no 13th month
    late = {**good[0], "序号": 5, "行政相对人名称": "济南市长清区福康大药房有限公司",
            "统一社会信用代码": CO["济南市长清区福康大药房有限公司"], "法定代表人": "孙红梅",
            "决定书文号": "长市监处罚〔2026〕116号", "决定内容": "销售未经检验的医疗器械，罚款8000元",
            "罚款金额（万元）": 0.8, "决定日期": D(2026, 11, 2), "上报日期": D(2026, 11, 16)}   # 10 working days
    early = {**good[0], "序号": 6, "行政相对人名称": "济南长清区乐活超市有限公司",
             "统一社会信用代码": CO["济南长清区乐活超市有限公司"], "法定代表人": "高峰",
             "决定书文号": "长市监处罚〔2026〕122号", "决定内容": "价格标示不规范，罚款1000元", "罚款金额（万元）": 0.1,
             "决定日期": D(2026, 11, 6), "上报日期": D(2026, 11, 4)}          # reported before decided
    choice = dict(good[2], 序号=7, 信息类别="行政强制", 行政相对人名称="济南长清区德润包装材料有限公司",
                  统一社会信用代码=CO["济南长清区德润包装材料有限公司"], 法定代表人="马骏",
                  决定书文号="长市监强〔2026〕9号", 处罚类别或许可类别="查封", 决定内容="查封涉嫌不合格包装材料",
                  决定日期=D(2026, 11, 10), 上报日期=D(2026, 11, 12))        # not 行政处罚/行政许可
    return fill_template(
        "政策法规科",
        {"双公示台账": r + [bad_code, no_number, bad_date, late, early, choice], "异议处理和信用修复台账": rows_yiyi()},
        drop=("制度文件台账", "理论学习台账"),
        rename={"异议处理和信用修复台账": {"办结日期": "办理日期"}})


def wb_wrong_column() -> bytes:
    """Only the cover and the 双公示 sheet kept; 决定日期 typed as 处罚日期 (not an alias)."""
    rows = [dict(r, 序号=i) for i, r in enumerate(rows_shuanggongshi()[2:], start=1)]   # no placeholder row
    return fill_template("政策法规科", {"双公示台账": rows},
                         drop=("制度文件台账", "理论学习台账", "异议处理和信用修复台账"),
                         rename={"双公示台账": {"决定日期": "处罚日期"}})


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLS = "application/vnd.ms-excel"
ODS = "application/vnd.oasis.opendocument.spreadsheet"

FAGUI_ALL = {1: (), 2: (), 3: ("accepted", (), ("placeholder-credit-code",)), 11: ()}

BODY_FAGUI = "信用监管科：\n\n附件是我科2026年11月信用监测报送材料，请查收。\n\n政策法规科 张伟\n电话：0531-87221318\n"


# -------------------------------------------------------------- 1 mutt, RFC 2231 continuations in GB18030

N_MUTT = "附件1信用状况监测分析报送材料模板（政策法规科）2026年11月.xlsx"


def make_mutt(w: Work):
    f = w.put(N_MUTT, wb_fagui())
    raw, how = mutt(w, sender="fagui@cqscjg.example.cn", realname="政策法规科 张伟",
                    subject="政策法规科2026年11月信用监测报送材料", body=BODY_FAGUI, files=[f])
    return redate(raw, when(19, 16, 42, 10)), f"{version('mutt')}; workbook: {version('openpyxl')}", how


# -------------------------------------------------------------- 2 swaks, raw UTF-8, LibreOffice-saved xlsx

N_SWAKS = "政策法规科2026年11月信用监测报送材料.xlsx"


def make_swaks(w: Work):
    data = soffice_convert(wb_fagui(), "t.xlsx", "xlsx")
    f = w.put(N_SWAKS, data)
    raw, how = swaks(w, sender="zhang.wei@cqscjg.example.cn", subject="政策法规科2026年11月信用监测报送材料",
                     body=BODY_FAGUI, files=[(f, XLSX)], from_header="zhang.wei@cqscjg.example.cn")
    return (redate(raw, when(19, 17, 5, 33)),
            f"{version('swaks')}; workbook: {version('openpyxl')} then {version('soffice')} ({SOFFICE_HOW['xlsx']})", how)


# -------------------------------------------------------------- 3 mpack, GBK raw names, legacy .xls

N_MPACK = "信用监管科2026年11月信用监测材料.xls"


def make_mpack(w: Work):
    data = soffice_convert(wb_xinyong(), "t.xlsx", "xls")
    f = w.put(N_MPACK.encode("gbk"), data)
    raw, how = mpack(w, sender="xinyong.staff@cqscjg.example.cn", subject="信用监管科11月份信用监测材料".encode("gbk"),
                     body="本科室2026年11月信用监测材料见附件。\n陈静\n".encode("gbk"), file=f, ctype=XLS,
                     when=when(18, 9, 12, 40))
    return raw, f"{version('mpack')}; workbook: {version('openpyxl')} then {version('soffice')} ({SOFFICE_HOW['xls']})", how


# -------------------------------------------------------------- 4 mailutils, .ods

N_ODS = "知识产权科2026年11月信用监测材料.ods"


def make_mailutils_ods(w: Work):
    data = soffice_convert(wb_zhichan(), "t.xlsx", "ods")
    f = w.put(N_ODS, data)
    raw, how = mailutils(w, sender="zhichan@cqscjg.example.cn", subject="知识产权科2026年11月信用监测报送材料",
                         body="信用监管科：\n本科11月份信用信息归集和联合奖惩台账见附件。\n知识产权科 刘洋\n",
                         files=[(f, ODS)])
    return (redate(raw, when(18, 14, 20, 5)),
            f"{version('mail')}; workbook: {version('openpyxl')} then {version('soffice')} ({SOFFICE_HOW['ods']})", how)


# -------------------------------------------------------------- 5 sendEmail, raw GBK, own one-sheet ledger (.xls)

N_SENDEMAIL = "双公示台账.xls"


def make_sendemail_gbk(w: Work):
    data = soffice_convert(own_shuanggongshi(), "t.xlsx", "xls")
    f = w.put(N_SENDEMAIL.encode("gbk"), data)
    raw, how = send_email(w, sender="fagui@cqscjg.example.cn", subject="政策法规科11月份双公示信息台账".encode("gbk"),
                          body="信用监管科：11月份双公示台账见附件。张伟".encode("gbk"), files=[f], charset="gbk")
    return (redate(raw, when(19, 10, 3, 17)),
            f"{version('sendEmail')}; workbook: {version('openpyxl')} then {version('soffice')} ({SOFFICE_HOW['xls']})",
            how + "   # run as from a GBK (cp936) console: every argument GBK bytes")


# -------------------------------------------------------------- 6 Foxmail layout: RFC 2047 GB18030 word in a quoted parameter

N_FOXMAIL = "附件1信用状况监测分析报送材料（餐饮科）2026年11月.xlsx"


def make_foxmail(w: Work):
    raw, how = foxmail(sender="canyin@cqscjg.example.cn", realname="餐饮科 孙丽",
                       subject="餐饮科2026年11月信用监测报送材料",
                       body="信用监管科：\n\n    您好！我科2026年11月信用监测材料见附件，请查收。\n\n餐饮科 孙丽",
                       files=[(N_FOXMAIL, wb_canyin(), "application/octet-stream")], when=when(19, 11, 26, 48))
    return raw, f"{version('python')} (Foxmail 7.2 layout); workbook: {version('openpyxl')}", how


# -------------------------------------------------------------- 7 mistakes: mutt, UTF-8 RFC 2231

N_MISTAKES = "政策法规科2026年11月信用监测报送材料（修改版）.xlsx"


def make_mistakes(w: Work):
    f = w.put(N_MISTAKES, wb_mistakes())
    raw, how = mutt(w, sender="fagui@cqscjg.example.cn", realname="政策法规科 张伟",
                    subject="政策法规科2026年11月信用监测报送材料", body=BODY_FAGUI, files=[f], send_charset="utf-8")
    return redate(raw, when(20, 8, 51, 2)), f"{version('mutt')}; workbook: {version('openpyxl')}", how


# -------------------------------------------------------------- 8 PDF renamed .xlsx: mailutils

N_PDF = "双公示台账.xlsx"


def make_pdf_as_xlsx(w: Work):
    f = w.put(N_PDF, pdf_of_ledger())
    raw, how = mailutils(w, sender="zhang.wei@cqscjg.example.cn", subject="政策法规科2026年11月双公示台账",
                         body="双公示台账见附件。\n", files=[(f, XLSX)])
    return (redate(raw, when(19, 15, 10, 9)),
            f"{version('mail')}; file: a PDF by {version('soffice')} ({SOFFICE_HOW['pdf']}), renamed .xlsx", how)


# -------------------------------------------------------------- 9 zip with GBK names (Info-ZIP) in an Outlook message

N_ZIP = "宣传科11月份信用监测材料（含诚信宣传照片）.zip"
ZIP_MEMBERS = ["宣传科2026年11月信用监测材料.xlsx", "诚信宣传进社区现场照片1.jpg", "诚信宣传进社区现场照片2.jpg"]


def make_zip(w: Work):
    members = [(ZIP_MEMBERS[0], wb_xuanchuan()), (ZIP_MEMBERS[1], cjpeg(ppm_photo(1))),
               (ZIP_MEMBERS[2], cjpeg(ppm_photo(2)))]
    data, zhow = zip_gbk(w, members)
    raw, how = outlook(sender="xuanchuan@cqscjg.example.cn", realname="宣传科王芳",
                       subject="宣传科11月份信用监测材料及诚信宣传活动照片",
                       body="信用监管科：\n本月材料及活动照片已打包，请查收。\n宣传科 王芳",
                       files=[(N_ZIP, data, "application/x-zip-compressed")], when=when(19, 9, 40, 12))
    return (raw, f"{version('zip')} (GBK names, no UTF-8 flag) + {version('python')} (Outlook 16.0 layout); "
            f"photos: {version('cjpeg')}; workbook: {version('openpyxl')}", zhow + "\n" + how)


# -------------------------------------------------------------- 10 auto-reply: swaks --add-header

def make_autoreply(w: Work):
    raw, how = swaks(w, sender="zhichan@cqscjg.example.cn",
                     subject="自动回复: 【提醒】2026年11月信用监测材料报送截止日期临近",
                     body="您好，我于11月18日至11月24日外出培训，期间邮件可能无法及时回复。如有急事请致电0531-87221325。\n刘洋\n",
                     headers=["Auto-Submitted: auto-replied", "X-Autoreply: yes", "Precedence: auto_reply",
                              "In-Reply-To: <reminder-2026-11-zhichan@cqscjg.example.cn>"],
                     from_header="zhichan@cqscjg.example.cn")
    return redate(raw, when(20, 9, 0, 4)), version("swaks"), how


# -------------------------------------------------------------- 11 bounce: Exim's own DSN

def make_bounce(w: Work):
    original = python_plain(headers=[
        ("From", "信用监管科 <xyjgk@cqscjg.example.cn>"),
        ("To", "chen.li@cqscjg.example.cn"),
        ("Subject", "【提醒】2026年11月信用监测材料报送截止日期临近"),
        ("Date", email.utils.format_datetime(when(20, 9, 0, 0))),
        ("Message-ID", "<reminder-2026-11-chenli@cqscjg.example.cn>"),
        ("Auto-Submitted", "auto-generated"),
    ], body="请于2026年11月25日前报送本月信用监测材料。\n信用监管科\n")
    raw, how = exim_bounce(w, original, sender=MAILBOX, rcpt="chen.li@cqscjg.example.cn")
    return (redate(raw, when(20, 9, 0, 3)),
            f"{version('exim')} (the bounce); the bounced reminder: {version('python')}", how)


# -------------------------------------------------------------- 11b read receipt: Outlook MDN, no Auto-Submitted

def outlook_read_receipt(*, sender: str, realname: str, original_subject: str, original_id: str,
                         sent: dt.datetime, read: dt.datetime, charset: str = "gb2312") -> tuple[bytes, str]:
    """Outlook 16.0 (zh-cn) read receipt: multipart/report; report-type=disposition-notification,
    from a person's address, subject '已读: …', and no Auto-Submitted header."""
    bnd = "----=_NextPart_000_0002_01DB5A91.3C1D8E20"
    text = (f"您的邮件\r\n\r\n  收件人: {realname}\r\n  主题: {original_subject}\r\n"
            f"  发送时间: {sent.strftime('%Y/%m/%d %H:%M')}\r\n\r\n已在 {read.strftime('%Y/%m/%d %H:%M')} 读取。\r\n")
    h = [
        f"From: \"{_word(realname, charset)}\" <{sender}>",
        f"To: \"{_word('信用监管科', charset)}\" <{MAILBOX}>",
        "Subject: " + "\r\n\t".join(_words("已读: " + original_subject, charset, 14)),
        f"Date: {read.strftime('%a, %d %b %Y %H:%M:%S +0800')}",
        f"Message-ID: <000201db5a91$3c1d8e20$b4589a60${read.strftime('%H%M%S')}@cqscjg.example.cn>",
        "MIME-Version: 1.0",
        f"Content-Type: multipart/report;\r\n\treport-type=disposition-notification;\r\n\tboundary=\"{bnd}\"",
        "X-Mailer: Microsoft Outlook 16.0",
        "Thread-Index: AdtakTwdjiA0sLgXQf6cN1mB2yYkaQ==",
        "Content-Language: zh-cn",
        "",
        "This is a multipart message in MIME format.",
        "",
        f"--{bnd}",
        f"Content-Type: text/plain;\r\n\tcharset=\"{charset}\"",
        "Content-Transfer-Encoding: base64",
        "",
        _b64lines(text.encode(charset)),
        "",
        f"--{bnd}",
        "Content-Type: message/disposition-notification",
        "",
        f"Reporting-UA: {sender.split('@')[0]}; Microsoft Outlook 16.0",
        f"Final-Recipient: rfc822;{sender}",
        f"Original-Message-ID: {original_id}",
        "Disposition: manual-action/MDN-sent-manually; displayed",
        "",
        f"--{bnd}--",
        "",
    ]
    how = ("python3: a read receipt as Outlook 16.0 (zh-cn) writes it: multipart/report; "
           "report-type=disposition-notification, gb2312 RFC 2047 subject '已读: …', no Auto-Submitted")
    return "\r\n".join(h).encode("ascii"), how


def make_read_receipt(w: Work):
    raw, how = outlook_read_receipt(sender="zhang.wei@cqscjg.example.cn", realname="张伟",
                                    original_subject="【回执】政策法规科2026年11月信用监测材料已受理",
                                    original_id="<receipt-2026-11-0007@cqscjg.example.cn>",
                                    sent=when(19, 17, 6), read=when(20, 8, 58, 31))
    return raw, f"{version('python')} (Outlook 16.0 read receipt)", how


# -------------------------------------------------------------- 12 unknown sender: swaks from a personal mailbox

N_UNKNOWN = "附件1信用状况监测分析报送材料-政策法规科-2026年11月.xlsx"


def make_unknown(w: Work):
    f = w.put(N_UNKNOWN, wb_fagui())
    raw, how = swaks(w, sender="zhangwei_1988@163.com", subject="政策法规科2026年11月信用监测报送材料",
                     body="单位邮箱登不上，先用个人邮箱发送，请查收。\n政策法规科 张伟\n", files=[(f, XLSX)],
                     from_header="zhangwei_1988@163.com")
    return redate(raw, when(19, 21, 15, 40)), f"{version('swaks')}; workbook: {version('openpyxl')}", how


# -------------------------------------------------------------- 13 no attachment: mailutils

def make_no_attachment(w: Work):
    raw, how = mailutils(w, sender="zhichan@cqscjg.example.cn", subject="知识产权科2026年11月信用监测报送材料",
                         body="信用监管科：\n本科室11月份信用监测材料见附件，请查收。\n知识产权科 刘洋\n")
    return redate(raw, when(18, 14, 2, 55)), version("mail"), how


# -------------------------------------------------------------- 14 forwarded message (message/rfc822): sendEmail inside mutt

N_FWD = "个私服务中心2026年11月信用监测材料（信易贷）.xlsx"


def make_forward(w: Work):
    f = w.put(N_FWD, wb_gesi())
    inner, ihow = send_email(w, sender="李娜 <lina_gesi@qq.com>", subject="11月信易贷台账", body="李科长：11月份的表做好了，请审核后报信用科。",
                             files=[f], charset="utf-8", to="gesi@cqscjg.example.cn")
    inner = redate(inner, when(19, 8, 31, 6))
    fwd = w.put("11月信易贷台账.eml", inner)
    raw, how = mutt(w, sender="gesi@cqscjg.example.cn", realname="个私服务中心",
                    subject="Fwd: 11月信易贷台账（个私服务中心2026年11月报送）",
                    body="信用监管科：\n转发我中心2026年11月信用监测材料，请查收。\n个私服务中心\n",
                    files=[fwd], send_charset="utf-8")
    return (redate(raw, when(19, 9, 5, 51)),
            f"{version('mutt')} (outer, forwards the .eml as message/rfc822); {version('sendEmail')} (inner); "
            f"workbook: {version('openpyxl')}", ihow + "\n" + how)


# -------------------------------------------------------------- 15 wrong column only: sendEmail, UTF-8 raw

N_WRONGCOL = "双公示台账（政策法规科2026年11月）.xlsx"


def make_wrong_column(w: Work):
    f = w.put(N_WRONGCOL, wb_wrong_column())
    raw, how = send_email(w, sender="fagui@cqscjg.example.cn", subject="政策法规科2026年11月双公示台账",
                          body="信用监管科：双公示台账见附件。", files=[f], charset="utf-8")
    return redate(raw, when(19, 14, 30, 0)), f"{version('sendEmail')}; workbook: {version('openpyxl')}", how


# -------------------------------------------------------------- 17-19 a file name naming two tasks (Foxmail)

N_TIE = "信用动态-长清区市场监管局开展信用修复专题培训.docx"
TIE_TEXT = ("长清区市场监管局开展信用修复专题培训\n\n"
            "11月17日，长清区市场监管局组织辖区企业开展信用修复专题培训，讲解行政处罚信息信用修复的条件、"
            "流程和所需材料，60余家企业参加。\n")
DOCX_HOW = "python3 zipfile: the parts of a minimal WordprocessingML document ([Content_Types].xml, _rels, word/document.xml)"


def tie_doc() -> bytes:
    """The 宣传科's news item as a .docx (a minimal WordprocessingML package: no Word processor is
    installed where the cases are made); its name holds 信用动态 (task 5) and 信用修复 (task 11)."""
    import zipfile
    from xml.sax.saxutils import escape
    ns = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    paras = "".join(f"<w:p><w:r><w:t>{escape(line)}</w:t></w:r></w:p>" for line in TIE_TEXT.split("\n") if line)
    parts = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'wordprocessingml.document.main+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>',
        "word/document.xml": f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<w:document xmlns:w="{ns}"><w:body>{paras}</w:body></w:document>',
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(zipfile.ZipInfo(name, (2026, 11, 19, 15, 0, 0)), text.encode("utf-8"))
    return buf.getvalue()


def _make_tie(subject: str, body: str, minute: int):
    def make(w: Work):
        raw, how = foxmail(sender="xuanchuan@cqscjg.example.cn", realname="宣传科 王芳", subject=subject, body=body,
                           files=[(N_TIE, tie_doc(), "application/octet-stream")], when=when(19, 16, minute, 5))
        return raw, f"{version('python')} (Foxmail 7.2 layout); document: {DOCX_HOW}", how
    return make


make_tie_subject = _make_tie("信用动态稿件", "信用监管科：\n\n    您好！稿件见附件，请审核。\n\n宣传科 王芳", 2)
make_tie_body = _make_tie("宣传科11月份报送材料", "信用监管科：\n\n    您好！附件是我科本月的信用动态稿件，请审核后推送至"
                          "\"信用济南\"网站。\n\n宣传科 王芳", 7)
make_tie_undecided = _make_tie("宣传科报送材料", "信用监管科：\n\n    您好！材料见附件，请查收。\n\n宣传科 王芳", 12)


# -------------------------------------------------------------- 20-22 headers not as the template writes them

N_NEAR = "双公示台账（政策法规科2026年11月）.xlsx"
N_SYNONYM = "食品流通科2026年11月分级分类监管台账.xlsx"
N_FAR = "食品流通科2026年11月分级分类监管台账（修改）.xlsx"
FENJI_DROP = ("制度文件台账", "理论学习台账", "诚信宣传台账")


def make_header_near(w: Work):
    """Three headers retyped by hand: a half-width bracket, a space, a colon."""
    rows = [dict(r, 序号=i) for i, r in enumerate(rows_shuanggongshi()[2:], start=1)]   # no placeholder row
    data = fill_template("政策法规科", {"双公示台账": rows}, drop=("制度文件台账", "理论学习台账", "异议处理和信用修复台账"),
                         rename={"双公示台账": {"罚款金额（万元）": "罚款金额（万元)", "行政相对人名称": "行政相对人 名称",
                                              "决定机关": "决定机关："}})
    raw, how = foxmail(sender="fagui@cqscjg.example.cn", realname="政策法规科 张伟", subject="政策法规科2026年11月双公示台账",
                       body="信用监管科：\n\n    双公示台账见附件。\n\n政策法规科 张伟",
                       files=[(N_NEAR, data, XLSX)], when=when(19, 9, 41, 30))
    return raw, f"{version('python')} (Foxmail 7.2 layout); workbook: {version('openpyxl')}", how


def _make_fenji(filename: str, header: str, minute: int):
    def make(w: Work):
        data = fill_template("食品流通科", {"分级分类监管台账": rows_fenji("食品销售")}, drop=FENJI_DROP,
                             rename={"分级分类监管台账": {"监管领域": header}})
        raw, how = foxmail(sender="shipin.lt@cqscjg.example.cn", realname="食品流通科 赵强",
                           subject="食品流通科2026年11月分级分类监管台账",
                           body="信用监管科：\n\n    我科本月分级分类监管台账见附件，请查收。\n\n食品流通科 赵强",
                           files=[(filename, data, XLSX)], when=when(19, 10, minute, 12))
        return raw, f"{version('python')} (Foxmail 7.2 layout); workbook: {version('openpyxl')}", how
    return make


make_header_synonym = _make_fenji(N_SYNONYM, "监管行业", 3)
make_header_far = _make_fenji(N_FAR, "监管对象", 9)


# -------------------------------------------------------------- the list

CASES: list[Case] = [
    Case("mutt_gb18030_rfc2231",
         "政策法规科 sends its filled Annex 1 workbook; mutt encodes the long Chinese file name as "
         "RFC 2231 continuations (filename*0*=gb18030''…; filename*1*=…) and the subject/From as "
         "RFC 2047 gb18030 words; 8-bit gb18030 body.",
         make_mutt, "accepted", "政策法规科", workbook_items(N_MUTT, FAGUI_ALL), sender="fagui@cqscjg.example.cn",
         notes="个体工商户 row 2 uses the placeholder 00000000000000000X: a warning only."),
    Case("swaks_utf8_raw",
         "The same workbook, opened and saved again in LibreOffice, sent by swaks from the other "
         "registered 政策法规科 address; swaks writes the subject and the attachment name as raw "
         "8-bit UTF-8 (no RFC 2047/2231).",
         make_swaks, "accepted", "政策法规科", workbook_items(N_SWAKS, FAGUI_ALL), sender="zhang.wei@cqscjg.example.cn"),
    Case("mpack_gbk_xls",
         "信用监管科's own workbook saved by LibreOffice as legacy .xls (MS Excel 97), sent by mpack "
         "from a GBK system: the subject and name=/filename= are raw 8-bit GBK bytes.",
         make_mpack, "accepted", "信用监管科",
         workbook_items(N_MPACK, {1: (), 2: (), 4: (), 8: (), 9: (), 11: ()}), sender="xinyong.staff@cqscjg.example.cn",
         notes="Sheet 制度文件台账 (task 1) is empty: allowed (allow_empty), accepted with 0 rows. "
               "The subject says 11月份 without a year; the cover says 2026年11月."),
    Case("mailutils_ods",
         "知识产权科 sends its workbook as OpenDocument (.ods, saved by LibreOffice) with GNU mail; "
         "mail writes the subject and the file name as raw 8-bit UTF-8.",
         make_mailutils_ods, "accepted", "知识产权科",
         workbook_items(N_ODS, {1: (), 2: (), 4: (), 9: ()}), sender="zhichan@cqscjg.example.cn",
         notes="Sheets 制度文件台账 and 理论学习台账 are empty: allowed, accepted with 0 rows."),
    Case("sendemail_gbk_raw",
         "政策法规科 sends its own one-sheet 双公示 ledger (sheet 'Sheet1', a merged title row above "
         "the header, some headers written as accepted aliases: 罚款金额(万元), 作出决定日期, 上传日期; "
         "no cover) as legacy .xls, by sendEmail from a GBK console: subject and file name raw GBK.",
         make_sendemail_gbk, "accepted", "政策法规科",
         [item(N_SENDEMAIL, 3, "accepted", (), ("placeholder-credit-code",))], sender="fagui@cqscjg.example.cn",
         notes="Task 3 from the headers of Sheet1 or from 双公示 in the file name; the month from the "
               "subject (11月份 → 2026-11) since there is no cover."),
    Case("foxmail_rfc2047_quoted",
         "餐饮科 sends its workbook from Foxmail: name=\"=?gb18030?B?…?=\" and filename=\"=?gb18030?B?…?=\" "
         "(an RFC 2047 word inside a quoted parameter, which RFC 2047 forbids but Foxmail, QQ Mail, "
         "Coremail and Outlook all write); multipart/alternative GB18030 body.",
         make_foxmail, "accepted", "餐饮科",
         workbook_items(N_FOXMAIL, {1: (), 2: (), 7: (), 8: ()}), sender="canyin@cqscjg.example.cn",
         notes="Sheet 制度文件台账 (task 1) is empty: allowed, accepted with 0 rows."),
    Case("mutt_mistakes",
         "政策法规科 sends a workbook with a clerk's mistakes (mutt, UTF-8 RFC 2231): the two sheets "
         "with nothing this month deleted; 双公示台账 row 2 a credit code with a wrong check character, "
         "row 3 no 决定书文号, row 4 上报日期 '2026.13.01', row 5 uploaded 10 working days after the "
         "decision (11-02 → 11-16), row 6 uploaded before the decision, row 7 信息类别 '行政强制'; "
         "异议处理和信用修复台账 has '办理日期' where the template says 办结日期 (not an alias).",
         make_mistakes, "rejected", "政策法规科",
         [item(N_MISTAKES, 3, "rejected",
               ["bad-credit-code", "missing-value", "bad-date", "report-before-decision", "bad-choice"],
               ["late-publication"]),
          item(N_MISTAKES, 11, "rejected", ["missing-column"])],
         sender="fagui@cqscjg.example.cn",
         notes="The bureau expects every problem listed at once with sheet, row, column and cell: "
               "双公示台账 E4 (bad-credit-code), G5 (missing-value), L6 (bad-date), "
               "K7/L7 late-publication warning, L8 report-before-decision, B9 bad-choice; the 异议 sheet "
               "missing-column 办结日期 (its row checks cannot run). No missing-sheet for tasks 1 and 2: "
               "a month's workbook need not carry sheets for tasks with nothing to report."),
    Case("pdf_renamed_xlsx",
         "A PDF (the 双公示 ledger printed from LibreOffice) named 双公示台账.xlsx and sent by GNU mail "
         "with a spreadsheet Content-Type. Task 3 accepts only spreadsheets.",
         make_pdf_as_xlsx, "rejected", "政策法规科",
         [item(N_PDF, 3, "rejected", ["wrong-file-kind"])], sender="zhang.wei@cqscjg.example.cn",
         notes="Task from 双公示 in the file name; the content is a PDF whatever the name and header say."),
    Case("outlook_zip_gbk",
         "宣传科 sends one zip from Outlook (name=\"=?gb2312?B?…?=\r\n\t=?gb2312?B?…?=\", two words folded "
         "inside the quotes). The zip was made by Info-ZIP zip on files with GBK names: member names are "
         "raw GBK without the UTF-8 flag. Inside: the 宣传科 workbook and two JPEG photos of the 诚信宣传 "
         "activity (task 7).",
         make_zip, "accepted", "宣传科",
         workbook_items(ZIP_MEMBERS[0], {5: (), 7: (), 10: ()})
         + [item(ZIP_MEMBERS[1], 7), item(ZIP_MEMBERS[2], 7)],
         sender="xuanchuan@cqscjg.example.cn",
         notes="Items are the zip's members, named as decoded from GBK. Sheet 严重失信事件台账 (task 10) is "
               "empty: allowed. The photos' task comes from 诚信宣传 in their names (or from the workbook beside them)."),
    Case("swaks_autoreply",
         "An out-of-office answer from 知识产权科's address to mailbot's reminder, by swaks with "
         "--add-header 'Auto-Submitted: auto-replied' (also X-Autoreply, Precedence: auto_reply).",
         make_autoreply, "ignored", None, [], sender="zhichan@cqscjg.example.cn",
         notes="No reply (RFC 3834); section null: nothing is decided for machine mail."),
    Case("exim_bounce",
         "Exim's delivery-failure report (multipart/report; report-type=delivery-status, with the "
         "returned reminder as message/rfc822) for a reminder mailbot sent to an address that no "
         "longer exists.",
         make_bounce, "ignored", None, [], sender="Mailer-Daemon@cqscjg.example.cn",
         notes="Must never be answered; the returned message/rfc822 part is not a forwarded submission."),
    Case("outlook_read_receipt",
         "张伟 (registered to 政策法规科) opens mailbot's receipt in Outlook and lets it send a read "
         "receipt: multipart/report; report-type=disposition-notification from a person's address, "
         "subject '已读: 【回执】…', no Auto-Submitted header.",
         make_read_receipt, "ignored", None, [], sender="zhang.wei@cqscjg.example.cn",
         notes="Only the multipart/report type marks it as machine mail (a bounce by Exim also says "
               "Auto-Submitted; this one does not). Answering it would start a loop."),
    Case("swaks_unknown_sender",
         "A filled 政策法规科 workbook (cover: 报送科室 政策法规科) from a personal 163.com address that "
         "is not registered to any section, by swaks.",
         make_unknown, "quarantined", "政策法规科", workbook_items(N_UNKNOWN, FAGUI_ALL),
         sender="zhangwei_1988@163.com",
         notes="Section from the cover, unconfirmed: the message waits for a person. Items show what "
               "the checks found; nothing counts as submitted until confirmed."),
    Case("mailutils_no_attachment",
         "知识产权科 says '见附件' but attached nothing (GNU mail).",
         make_no_attachment, "rejected", "知识产权科", [], error_codes=["no-attachment"],
         sender="zhichan@cqscjg.example.cn"),
    Case("mutt_forward_rfc822",
         "个私服务中心 forwards as an attachment (message/rfc822, mutt) the message its clerk sent from "
         "a personal QQ address (sendEmail, raw UTF-8 name) carrying the centre's workbook with the "
         "信易贷 ledger (task 6).",
         make_forward, "accepted", "个私服务中心",
         workbook_items(N_FWD, {1: (), 2: (), 6: ()}), sender="gesi@cqscjg.example.cn",
         notes="Section from the outer sender (registered), not the inner qq.com one. Sheet 制度文件台账 "
               "(task 1) is empty: allowed. 信易贷 row 2 has no 授信 yet (optional columns empty)."),
    Case("sendemail_wrong_column",
         "政策法规科 sends a workbook keeping only the cover and 双公示台账, whose header says 处罚日期 "
         "where the template says 决定日期 (处罚日期 is not among 决定日期's aliases: 处罚决定日期, "
         "作出决定日期, 许可决定日期, 作出行政决定日期). sendEmail, raw UTF-8 name.",
         make_wrong_column, "rejected", "政策法规科",
         [item(N_WRONGCOL, 3, "rejected", ["missing-column"])], sender="fagui@cqscjg.example.cn",
         notes="The 7-working-day check cannot run without 决定日期; the reply should name the column and "
               "attach the blank template."),
    Case("foxmail_tie_subject",
         "宣传科 sends a news item (.docx) whose file name holds 信用动态 (task 5) and 信用修复 "
         "(task 11); the subject 信用动态稿件 names task 5 only. Foxmail 7.2 layout.",
         make_tie_subject, "accepted", "宣传科", [item(N_TIE, 5)], sender="xuanchuan@cqscjg.example.cn",
         notes="The subject breaks the file name's tie; the receipt says so."),
    Case("foxmail_tie_body",
         "The same document; the subject names no task, the body says 信用动态稿件 (task 5 only).",
         make_tie_body, "accepted", "宣传科", [item(N_TIE, 5)], sender="xuanchuan@cqscjg.example.cn",
         notes="The body breaks the tie the subject leaves."),
    Case("foxmail_tie_undecided",
         "The same document; neither the subject nor the body names task 5 or 11.",
         make_tie_undecided, "rejected", "宣传科", [item(N_TIE, None, "rejected", ["task-ambiguous"])],
         sender="xuanchuan@cqscjg.example.cn",
         notes="The rejection lists both candidates and shows the file name to use ('任务5 …' or '任务11 …')."),
    Case("foxmail_header_near",
         "政策法规科's 双公示台账 with three headers retyped by hand: 罚款金额（万元) (one half-width "
         "bracket), 行政相对人 名称 (a space), 决定机关： (a colon). Foxmail 7.2 layout.",
         make_header_near, "accepted", "政策法规科", [item(N_NEAR, 3, warnings=["header-read-as"] * 3)],
         sender="fagui@cqscjg.example.cn",
         notes="Each header is read as the template's column, with a warning naming its cell (e.g. N2)."),
    Case("foxmail_header_synonym",
         "食品流通科's 分级分类监管台账 headed 监管行业 where the template says 监管领域 (a synonym the "
         "template lists). Foxmail 7.2 layout.",
         make_header_synonym, "accepted", "食品流通科", [item(N_SYNONYM, 8, warnings=["header-read-as"])],
         sender="shipin.lt@cqscjg.example.cn",
         notes="Warning: B2 列名'监管行业'按'监管领域'处理."),
    Case("foxmail_header_far",
         "食品流通科's 分级分类监管台账 headed 监管对象 where the template says 监管领域 (no synonym).",
         make_header_far, "rejected", "食品流通科", [item(N_FAR, 8, "rejected", ["missing-column"])],
         sender="shipin.lt@cqscjg.example.cn",
         notes="The rejection names B2 and the closest template column, 监管领域."),
]


# ============================================================== checks and writing

def check_parses(name: str, raw: bytes, c: Case) -> None:
    """The stdlib parser must see the same structure the bureau's mail client would."""
    import email
    import email.policy
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["From"], f"{name}: no From"
    names = [p.get_filename() for p in msg.walk()
             if p.get_content_disposition() == "attachment" or (not p.is_multipart() and p.get_filename())]
    if c.items and c.outcome != "ignored":
        assert names, f"{name}: no attachment seen by email.policy.default"


def check_workbooks() -> None:
    """Every workbook variant opens with python-calamine."""
    from python_calamine import CalamineWorkbook
    for label, data in [("xlsx", wb_fagui()), ("soffice-xlsx", soffice_convert(wb_fagui(), "t.xlsx", "xlsx")),
                        ("xls", soffice_convert(wb_xinyong(), "t.xlsx", "xls")),
                        ("ods", soffice_convert(wb_zhichan(), "t.xlsx", "ods")),
                        ("own-xls", soffice_convert(own_shuanggongshi(), "t.xlsx", "xls")),
                        ("mistakes", wb_mistakes()), ("wrong-column", wb_wrong_column())]:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
        assert wb.sheet_names, label


def write_case(c: Case, root: Path) -> None:
    work = Work(root)
    raw, tool, how = c.make(work)
    check_parses(c.name, raw, c)
    (HERE / f"{c.name}.eml").write_bytes(raw)
    doc: dict[str, Any] = {
        "description": c.description,
        "tool": tool,
        "how": how,
        "received": "__RECEIVED__",
        "sender": c.sender,
        "outcome": c.outcome,
        "section": c.section,
    }
    if c.error_codes:
        doc["error_codes"] = c.error_codes
    doc["items"] = c.items
    if c.notes:
        doc["notes"] = c.notes
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)
    text = text.replace("'__RECEIVED__'", RECEIVED).replace("__RECEIVED__", RECEIVED)
    header = f"# {c.name}.eml — expectation (see README.md). Regenerate: make_cases.py {c.name}\n"
    (HERE / f"{c.name}.yaml").write_text(header + text, encoding="utf-8")
    print(f"{c.name}.eml  {len(raw):6d} bytes  {c.outcome}")


def main(argv: list[str]) -> int:
    wanted = set(argv)
    unknown = wanted - {c.name for c in CASES}
    if unknown:
        print("unknown case(s):", ", ".join(sorted(unknown)), file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="mailbot-cases-"))
    try:
        check_workbooks()
        for c in CASES:
            if not wanted or c.name in wanted:
                write_case(c, root)
    finally:
        if _SMTP is not None:
            _SMTP.__exit__(None, None, None)
        shutil.rmtree(root, ignore_errors=True)
        if _SOFFICE_PROFILE:
            shutil.rmtree(_SOFFICE_PROFILE, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
