# `inspect.signature` of the served model's bound methods, worked out once instead of on every request.
#
# mlflow's invocations() asks `inspect.signature(model.predict)` on every request, PyFuncModel._predict asks
# it again of the flavor's predict function, and a Python model's wrapper asks it of the model's own predict:
# 50-110 us of a 1-2 ms request (measured on the `sum` fixture and the iris example, mlflow 3.17.2), spent
# rebuilding the same immutable answer. Within the three mlflow modules that ask, `inspect` is replaced by a stand-in whose `signature` remembers the answer for a
# bound method, by its function and the object it is bound to; everything else is the real module's. The
# object is kept with the answer, so its id cannot be reused by another while remembered.
import inspect
import sys
import types

# More bound methods than a served model ever asks about; past it, the memory starts again.
LIMIT = 256


class CachingInspect(types.ModuleType):
    def __init__(self):
        super().__init__("inspect")
        self.remembered = {}

    def __getattr__(self, name):
        return getattr(inspect, name)

    def signature(self, obj, *args, **kwargs):
        func = getattr(obj, "__func__", None)
        owner = getattr(obj, "__self__", None)
        if args or kwargs or func is None or owner is None or not isinstance(obj, types.MethodType):
            return inspect.signature(obj, *args, **kwargs)
        key = (func, id(owner))
        hit = self.remembered.get(key)
        if hit is not None and hit[0] is owner:
            return hit[1]
        answer = inspect.signature(obj)
        if len(self.remembered) >= LIMIT:
            self.remembered.clear()
        self.remembered[key] = (owner, answer)
        return answer


def install(module_names=("mlflow.pyfunc", "mlflow.pyfunc.scoring_server", "mlflow.pyfunc.model")):
    """Gives each named module (already imported) the stand-in in place of `inspect`."""
    stand_in = CachingInspect()
    for name in module_names:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "inspect", None) is inspect:
            module.inspect = stand_in
    return stand_in
