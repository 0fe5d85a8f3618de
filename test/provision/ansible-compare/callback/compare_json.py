# A stdout callback for the comparison suite: prints, at the end, one JSON line per task result
# ({"host", "case", "task", "status", "msg"}), since ansible-core alone ships no JSON callback.
from __future__ import annotations

import json

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
    name: compare_json
    type: stdout
    short_description: task statuses as JSON lines
    description: One JSON line per task result, for vzsb's comparison tests.
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'compare_json'

    def _emit(self, result, status):
        msg = result._result.get('msg', '') or result._result.get('stderr', '')
        print(json.dumps({'host': result._host.get_name(), 'case': result._task.get_vars().get('vzsb_case', ''), 'task': result._task.get_name(), 'status': status, 'msg': str(msg)}), flush=True)

    def v2_runner_on_ok(self, result):
        self._emit(result, 'changed' if result._result.get('changed') else 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._emit(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._emit(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._emit(result, 'failed')
