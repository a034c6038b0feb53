"""
Convert IEMOCAP dialogs (or a freshly generated synthetic corpus) to rosbag2 bags.

Example::

    python training/make_bag.py /tmp/corpus /tmp/bags --synthetic

See :mod:`listener_head_ros.bags.convert` for the bag layout.
"""

import sys

from listener_head_ros.bags.convert import main

if __name__ == '__main__':
    sys.exit(main())
